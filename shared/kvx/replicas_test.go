package kvx

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// TestReplicasCurrent: LoadKeys waits for online replicas that are behind, not for offline ones
// (they hold no consumers) nor on a single server (no replicas).
func TestReplicasCurrent(t *testing.T) {
	for _, c := range []struct {
		name string
		ci   *jetstream.ClusterInfo
		want bool
	}{
		{"single server", nil, true},
		{"R1 on a cluster", &jetstream.ClusterInfo{Leader: "n1"}, true},
		{"all current", &jetstream.ClusterInfo{Leader: "n1", Replicas: []*jetstream.PeerInfo{{Name: "n2", Current: true}, {Name: "n3", Current: true}}}, true},
		{"one offline", &jetstream.ClusterInfo{Leader: "n1", Replicas: []*jetstream.PeerInfo{{Name: "n2", Current: true}, {Name: "n3", Offline: true, Lag: 40}}}, true},
		{"one behind", &jetstream.ClusterInfo{Leader: "n1", Replicas: []*jetstream.PeerInfo{{Name: "n2", Current: true}, {Name: "n3", Lag: 40}}}, false},
	} {
		if got := replicasCurrent(c.ci); got != c.want {
			t.Errorf("%s: replicasCurrent = %v, want %v", c.name, got, c.want)
		}
	}
}
