package natstest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestCluster: the compose stack's three nodes start in-process as one JetStream cluster with
// their files' settings; an R3 stream keeps taking messages while its leader is stopped, and
// the restarted node catches up on its own store directory.
func TestCluster(t *testing.T) {
	c := StartCluster(t)
	for i := range ClusterSize {
		s := c.Server(i)
		v, err := s.Varz(nil)
		if err != nil {
			t.Fatal(err)
		}
		if v.Name != c.Name(i) || v.Cluster.Name != "jetsuite" || v.JetStream.Config == nil ||
			v.JetStream.Config.MaxStore != 4<<30 || v.JetStream.Config.MaxMemory != 256<<20 {
			t.Errorf("node %d: name %q, cluster %q, JetStream %+v: not the settings of %s",
				i+1, v.Name, v.Cluster.Name, v.JetStream.Config, c.files[i])
		}
		if !strings.HasPrefix(s.ClientURL(), "nats://127.0.0.1:") || s.ClusterAddr().IP.String() != "127.0.0.1" {
			t.Errorf("node %d listens on %s and %s, want loopback", i+1, s.ClientURL(), s.ClusterAddr())
		}
		if n := s.NumRoutes(); n < ClusterSize-1 {
			t.Errorf("node %d has %d routes, want at least %d", i+1, n, ClusterSize-1)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, js := Dial(t, c.URL(), "cluster-test", 60*time.Second)
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "R3", Subjects: []string{"r3"}, Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	publish := func(n int) {
		t.Helper()
		for range n {
			for {
				pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				_, err := js.Publish(pctx, "r3", []byte("x"))
				cancel()
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					t.Fatalf("publish: %v", err)
				}
			}
		}
	}
	publish(10)
	if err := c.WaitHealthy(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	leader := c.StreamLeader("R3")
	if leader < 0 {
		t.Fatal("R3 has no leader")
	}
	c.StopNode(leader)
	publish(10)
	if l := c.StreamLeader("R3"); l < 0 || l == leader {
		t.Errorf("R3's leader after stopping %s: %d", c.Name(leader), l)
	}
	if err := c.RestartNode(leader); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitHealthy(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	// The leader sees the restarted replica current once it has answered its appends.
	for {
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs != 20 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			t.Fatalf("R3 after the restart: %d messages, cluster %+v", info.State.Msgs, info.Cluster)
		}
		current := 0
		for _, r := range info.Cluster.Replicas {
			if r.Current && !r.Offline {
				current++
			}
		}
		if current == 2 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("R3's replicas not current: %+v", info.Cluster.Replicas)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := c.RestartNode(leader); err == nil {
		t.Error("RestartNode of a running node: no error")
	}
}
