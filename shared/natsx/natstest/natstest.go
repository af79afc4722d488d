// Package natstest starts a real embedded NATS JetStream server for tests, with file storage
// in the test's temporary directory, and declares jetsuite's topology on it.
package natstest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/natsx"
	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// Env is a running server with a connection.
type Env struct {
	Server  *server.Server
	NC      *nats.Conn
	JS      jetstream.JetStream
	DataDir string
}

// Start starts a server listening on a random loopback port, connects, and declares the
// default topology. Everything stops when the test ends.
func Start(t testing.TB) *Env {
	t.Helper()
	return StartIn(t, t.TempDir())
}

// StartIn is Start with a given data directory (restart a server on the same data).
func StartIn(t testing.TB, dir string) *Env {
	t.Helper()
	return StartAt(t, dir, "127.0.0.1:0")
}

// StartAt is Start with a given data directory and listen address, so that a test can stop
// the server and start it again where its clients will find it (they reconnect).
func StartAt(t testing.TB, dir, listen string) *Env {
	t.Helper()
	ns, err := natsx.StartEmbedded(natsx.EmbeddedOptions{DataDir: dir, Listen: listen})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := natsx.Connect(ctx, ns.ClientURL(), "test", nil)
	if err != nil {
		ns.Shutdown()
		t.Fatal(err)
	}
	js, err := natsx.JetStream(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := plan.Demo().Catalog().Ensure(ctx, js, topology.Options{}); err != nil {
		t.Fatal(err)
	}
	e := &Env{Server: ns, NC: nc, JS: js, DataDir: dir}
	t.Cleanup(e.Stop)
	return e
}

// Stop closes the connection and shuts the server down (idempotent).
func (e *Env) Stop() {
	if e.NC != nil {
		e.NC.Close()
	}
	if e.Server != nil {
		e.Server.Shutdown()
		e.Server.WaitForShutdown()
	}
}

// Connect opens another connection (for a service under test), closed when the test ends.
func (e *Env) Connect(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	return Dial(t, e.Server.ClientURL(), "test-service", 10*time.Second)
}

// Dial connects to url (one server or a cluster's comma-separated URLs) as the client name,
// waiting at most timeout, and opens JetStream on the connection; the connection is closed
// when the test ends. It fails the test if either cannot be done.
func Dial(t testing.TB, url, name string, timeout time.Duration) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	nc, err := natsx.Connect(ctx, url, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := natsx.JetStream(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}
