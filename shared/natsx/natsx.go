// Package natsx connects to NATS: to an external server (NATS_URL) or to a JetStream server
// embedded in this process, with the reconnect settings every jetsuite service wants.
package natsx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// EmbeddedOptions configures the embedded NATS JetStream server.
type EmbeddedOptions struct {
	// DataDir holds JetStream's file storage (a "jetstream" folder is created inside).
	DataDir string
	// Listen is host:port for NATS clients ("127.0.0.1:4222"); empty or "none" means in-process
	// connections only. Port 0 or -1 picks a free port.
	Listen string
	// MaxStore caps JetStream file storage in bytes (0: 10 GiB).
	MaxStore int64
	// MaxMemory caps JetStream memory storage in bytes (0: 1 GiB).
	MaxMemory int64
	// Logger receives the server's notices and errors (nil: silent).
	Logger *slog.Logger
}

// StartEmbedded starts a NATS server with JetStream and file storage and waits until it accepts
// connections. The caller owns the server and must call Shutdown.
func StartEmbedded(o EmbeddedOptions) (*server.Server, error) {
	if o.DataDir == "" {
		return nil, errors.New("embedded NATS: a data directory is required")
	}
	if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	opts := &server.Options{
		ServerName:         "jetsuite-embedded",
		JetStream:          true,
		StoreDir:           filepath.Join(o.DataDir, "jetstream"),
		JetStreamMaxStore:  o.MaxStore,
		JetStreamMaxMemory: o.MaxMemory,
		NoSigs:             true,
		MaxPayload:         8 << 20, // room for dead-lettering oversized inputs with their body
	}
	if opts.JetStreamMaxStore == 0 {
		opts.JetStreamMaxStore = 10 << 30
	}
	if opts.JetStreamMaxMemory == 0 {
		opts.JetStreamMaxMemory = 1 << 30
	}
	switch o.Listen {
	case "", "none":
		opts.DontListen = true
	default:
		host, port, err := net.SplitHostPort(o.Listen)
		if err != nil {
			return nil, fmt.Errorf("embedded NATS: listen address %q: %w", o.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("embedded NATS: listen port %q: %w", port, err)
		}
		if p == 0 {
			p = server.RANDOM_PORT
		} else if ln, err := net.Listen("tcp", o.Listen); err != nil {
			// Say so at once rather than after the server's readiness timeout.
			return nil, fmt.Errorf("embedded NATS: cannot listen on %s (is another NATS or jetsuite running? pick another --nats-listen, or \"none\" for in-process only): %w", o.Listen, err)
		} else {
			ln.Close()
		}
		opts.Host, opts.Port = host, p
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	if o.Logger != nil {
		ns.SetLoggerV2(&serverLogger{l: o.Logger}, false, false, false)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("embedded NATS: not ready after 30s (is the port in use?)")
	}
	return ns, nil
}

// Options returns the client options every jetsuite connection uses: reconnect forever with
// jittered waits, and log (never silently swallow) disconnects and async errors.
func Options(name string, log *slog.Logger) []nats.Option {
	if log == nil {
		log = slog.Default()
	}
	return []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectBufSize(64 << 20),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("NATS reconnected", "url", nc.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			log.Error("NATS async error", "subject", subj, "err", err)
		}),
	}
}

// Connect connects to the NATS servers in url (comma-separated) and waits up to the context's
// deadline for the first connection.
func Connect(ctx context.Context, url, name string, log *slog.Logger) (*nats.Conn, error) {
	nc, err := nats.Connect(url, Options(name, log)...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS: %w", err)
	}
	return nc, waitConnected(ctx, nc)
}

// ConnectInProcess connects to an embedded server without a socket.
func ConnectInProcess(ctx context.Context, ns *server.Server, name string, log *slog.Logger) (*nats.Conn, error) {
	nc, err := nats.Connect("", append(Options(name, log), nats.InProcessServer(ns))...)
	if err != nil {
		return nil, fmt.Errorf("connect to embedded NATS: %w", err)
	}
	return nc, waitConnected(ctx, nc)
}

func waitConnected(ctx context.Context, nc *nats.Conn) error {
	for !nc.IsConnected() {
		select {
		case <-ctx.Done():
			nc.Close()
			return fmt.Errorf("connect to NATS: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// JetStream returns a JetStream context with a generous async-publish window. (No per-publish
// ack timeout: nats.go would start a timer for every message; pipe.Publisher bounds its waits.)
func JetStream(nc *nats.Conn) (jetstream.JetStream, error) {
	return jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(8192))
}

type serverLogger struct{ l *slog.Logger }

func (s *serverLogger) Noticef(format string, v ...any) { s.l.Debug(fmt.Sprintf(format, v...)) }
func (s *serverLogger) Warnf(format string, v ...any)   { s.l.Warn(fmt.Sprintf(format, v...)) }
func (s *serverLogger) Fatalf(format string, v ...any)  { s.l.Error(fmt.Sprintf(format, v...)) }
func (s *serverLogger) Errorf(format string, v ...any)  { s.l.Error(fmt.Sprintf(format, v...)) }
func (s *serverLogger) Debugf(format string, v ...any)  {}
func (s *serverLogger) Tracef(format string, v ...any)  {}
