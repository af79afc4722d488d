// Package lease shares a service's units of work (a processor, a partition of a table's
// groups) among the instances of the service that run against one NATS, so that each unit has
// exactly one owner at a time, and moves the units of an instance that stops or dies to the
// others within seconds. It builds on JetStream alone (no coordinator of jetsuite's own): a KV
// bucket, JETSUITE_LEASES, whose entries expire TTL after their last write.
//
// # How units are shared
//
// Every instance keeps a member entry ("m.<group>.<instance>") alive and lists the members it
// sees. All instances compute the same preferred assignment from that list: the units, sorted
// by name, dealt out round robin over the members sorted by name. An instance takes a unit it
// should own by creating its lease ("u.<group>.<unit>"); the create fails while another owner
// holds it, so a transient disagreement about the member list costs a retry, never a second
// owner. An instance that should no longer own a unit (a new member joined) stops the unit
// gracefully (its Run drains and makes its state durable), then deletes the lease; the new
// owner's next create succeeds. A dead instance's leases expire after TTL and are taken then.
//
// # Fencing
//
// The owner renews each lease every TTL/5 with a compare-and-set on the lease's revision. It
// owns the unit only until TTL/2 after sending the newest renewal the server confirmed: past
// that deadline (NATS unreachable, the process stalled) it cancels the unit's context with
// ErrLost, and the unit must stop writing at once, without a graceful drain (shared/flow does).
// The server removes the lease no sooner than TTL after that renewal was stored, which was
// after it was sent; only then can another instance create it. So the old owner has stopped
// TTL/2 before a new one can start, a margin that covers the writes it had already sent. What
// it does not cover is a process frozen for longer than TTL/2 between checking its context and
// writing (a stop-the-world pause of seconds); outputs' ids and chains make such a late write
// harmless for streams, not for every KV write, and the package does not claim more.
//
// A renewal refused because the revision moved (someone else owns the lease) cancels the unit
// at once, also with ErrLost.
package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/kvx"
	"github.com/jetsuite/jetsuite/shared/natsx"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// ErrLost is the cause of a unit's cancelled context when its lease could not be renewed in
// time or was taken: the unit must stop at once, publishing and acking nothing more.
var ErrLost = errors.New("lease lost")

// errReleased is the cause of a unit's cancelled context when the instance gives the unit to
// another member, or stops: the unit stops gracefully.
var errReleased = errors.New("lease released")

// Unit is one piece of work that one instance at a time may run.
type Unit struct {
	// Name identifies the unit within its group (a durable name, "<task>.p3"); it becomes a
	// KV key token, so it may hold letters, digits, '-', '_' and '.'.
	Name string
	// Run does the unit's work until ctx ends. A ctx cancelled with cause ErrLost (see
	// context.Cause) asks it to stop at once; any other cancellation, gracefully. Run
	// returning before ctx ends with an error that says NATS could not answer for a moment
	// (natsx.Transient: a request timed out while a cluster node stopped) is logged, and Run
	// is called again after a backoff, the lease still held. Otherwise it stops the group's
	// Run: with its error (a fatal failure), or nil (the unit asked to stop, as shared/flow's
	// ErrStop does); the other units are stopped gracefully and every lease is released.
	Run func(ctx context.Context) error
}

// Options configure a group.
type Options struct {
	// Group names the units' group: usually the service ("windower"). Required.
	Group string
	// Instance names this instance (default: "<hostname>-<pid>-<random>"). Two instances
	// must not share a name.
	Instance string
	// TTL is how long a lease lives without renewal (default DefaultTTL). It must equal the
	// bucket's TTL: the bucket is declared with DefaultTTL (topology.Operations), so only
	// tests set it (on a bucket of their own).
	TTL time.Duration
	// Bucket is the lease bucket (default topology.BucketLeases).
	Bucket string
	// Log receives ownership changes (default slog.Default()).
	Log *slog.Logger
	// Observe, when set, is told of every unit this instance starts and stops owning, with
	// the time (a test's record of ownership intervals).
	Observe func(unit string, owned bool, at time.Time)
}

// DefaultTTL is how long a lease survives its owner: the longest a dead instance's units wait
// before another instance takes them.
const DefaultTTL = topology.LeaseTTL

func (o *Options) validate() error {
	if o.Group == "" {
		return errors.New("lease: Options.Group is required")
	}
	if strings.ContainsAny(o.Group, ".*> ") {
		return fmt.Errorf("lease: group %q: no '.', '*', '>' or spaces", o.Group)
	}
	if o.Instance == "" {
		o.Instance = DefaultInstance()
	}
	o.Instance = kvx.Escape(o.Instance)
	if o.TTL == 0 {
		o.TTL = DefaultTTL
	}
	if o.TTL < 500*time.Millisecond {
		return fmt.Errorf("lease: TTL %s is shorter than 500ms", o.TTL)
	}
	if o.Bucket == "" {
		o.Bucket = topology.BucketLeases
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	o.Log = o.Log.With("group", o.Group, "instance", o.Instance)
	return nil
}

// DefaultInstance is an instance name unique to this process: host, pid and a random suffix
// (a restarted process is a new instance; its old leases expire).
func DefaultInstance() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "host"
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// Run shares units with the group's other instances and runs the ones this instance owns,
// until ctx ends (then it stops them gracefully, releases their leases and returns nil) or a
// unit fails (then it stops the others and returns that error). Unit names must be unique.
func Run(ctx context.Context, js jetstream.JetStream, o Options, units []Unit) error {
	if err := o.validate(); err != nil {
		return err
	}
	names := make([]string, len(units))
	byName := map[string]Unit{}
	for i, u := range units {
		if u.Name == "" || u.Run == nil {
			return fmt.Errorf("lease %s: unit %d has no name or no Run", o.Group, i)
		}
		if _, dup := byName[u.Name]; dup {
			return fmt.Errorf("lease %s: unit %s declared twice", o.Group, u.Name)
		}
		byName[u.Name] = u
		names[i] = u.Name
	}
	slices.Sort(names)
	kv, err := js.KeyValue(ctx, o.Bucket)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it started
		}
		return fmt.Errorf("lease bucket %s: %w", o.Bucket, err)
	}
	g := &group{o: o, kv: kv, units: byName, names: names, owned: map[string]*owned{},
		failed: make(chan error, len(units)), wake: make(chan struct{}, 1)}
	return g.run(ctx)
}

type group struct {
	o      Options
	kv     jetstream.KeyValue
	units  map[string]Unit
	names  []string // sorted
	owned  map[string]*owned
	failed chan error // a unit's Run returned before it was stopped (nil: asked to stop)
	member uint64     // revision of our member entry (0: not written yet)
	// failing is set while NATS refuses the round's requests: one warning per streak, not
	// one a tick.
	failing bool
	wg      sync.WaitGroup
	// wake is signalled when a unit's Run returns, so that a release in progress finishes
	// (its lease deleted) at once rather than at the next tick.
	wake chan struct{}
}

// owned is a unit this instance holds the lease of.
type owned struct {
	rev      uint64    // the lease entry's revision
	deadline time.Time // renewal's sending time + TTL/2: past it, the lease is lost
	cancel   context.CancelCauseFunc
	done     chan struct{} // closed when the unit's Run returned
	// releasing: the unit was asked to stop gracefully (handed over, or the instance is
	// leaving). Its lease is still renewed until its Run returns, and deleted then: a unit
	// that drains and flushes for longer than the TTL must not be taken by another instance
	// while it still writes.
	releasing bool
}

func (g *group) memberKey(instance string) string { return "m." + g.o.Group + "." + instance }
func (g *group) leaseKey(unit string) string      { return "u." + g.o.Group + "." + unit }

func (g *group) run(ctx context.Context) error {
	g.o.Log.Info("joining", "units", len(g.names), "ttl", g.o.TTL)
	every := g.o.TTL / 5
	t := time.NewTicker(every)
	defer t.Stop()
	var err error
	for {
		g.tick(ctx)
		select {
		case <-ctx.Done():
		case err = <-g.failed:
		case <-t.C:
			continue
		case <-g.wake:
			continue
		}
		break
	}
	g.stopAll(err == nil)
	return err
}

// tick renews what it holds, fences what it could not renew in time, and takes or releases
// units to match the preferred assignment.
func (g *group) tick(ctx context.Context) {
	// One bound for the round's requests: a renewal that has not come back by TTL/2 is of
	// no use (the deadline has passed).
	rctx, cancel := context.WithTimeout(ctx, g.o.TTL/2)
	defer cancel()
	now := time.Now()
	g.renewMember(rctx)
	g.renewAll(rctx, now)
	want, ok := g.preferred(rctx)
	if !ok {
		return // members unknown this round: keep what we hold, take nothing
	}
	for _, name := range g.names {
		u := g.owned[name]
		switch {
		case u != nil && !want[name] && !u.releasing:
			g.release(name, u)
		case u == nil && want[name]:
			g.take(ctx, rctx, name)
		}
	}
}

// renewAll renews every lease held, those of units being released included (they still
// run), and finishes the releases whose unit has stopped.
func (g *group) renewAll(rctx context.Context, now time.Time) {
	for name, u := range g.owned {
		g.renew(rctx, name, u, now)
	}
	for name, u := range g.owned {
		if !u.releasing {
			continue
		}
		select {
		case <-u.done:
		default:
			continue // still draining: its lease stays ours, renewed above
		}
		delete(g.owned, name)
		dctx, cancel := context.WithTimeout(context.Background(), g.o.TTL/2)
		if err := g.kv.Delete(dctx, g.leaseKey(name), jetstream.LastRevision(u.rev)); err != nil {
			g.o.Log.Warn("lease not released (it expires on its own)", "unit", name, "err", err)
		}
		cancel()
	}
}

func (g *group) renewMember(ctx context.Context) {
	key := g.memberKey(g.o.Instance)
	var rev uint64
	var err error
	if g.member == 0 {
		rev, err = g.kv.Put(ctx, key, nil)
	} else if rev, err = g.kv.Update(ctx, key, nil, g.member); err != nil && !isTransient(err) {
		rev, err = g.kv.Put(ctx, key, nil) // expired (a long stall) or deleted: write it anew
	}
	if err != nil {
		if !g.failing {
			g.o.Log.Warn("member entry not renewed (retrying every tick)", "err", err)
		}
		g.failing = true
		return
	}
	if g.failing {
		g.o.Log.Info("member entry renewed again")
	}
	g.member, g.failing = rev, false
}

// renew extends a held lease; a lease not renewed by its deadline, or taken, is lost.
func (g *group) renew(ctx context.Context, name string, u *owned, now time.Time) {
	rev, err := g.kv.Update(ctx, g.leaseKey(name), []byte(g.o.Instance), u.rev)
	switch {
	case err == nil:
		u.rev, u.deadline = rev, now.Add(g.o.TTL/2)
		return
	case !isTransient(err):
		g.o.Log.Error("lease taken by another instance: stopping the unit at once", "unit", name, "err", err)
		g.lose(name, u)
		return
	}
	if time.Now().After(u.deadline) {
		g.o.Log.Error("lease not renewed in time: stopping the unit at once", "unit", name, "err", err)
		g.lose(name, u)
		return
	}
	g.o.Log.Warn("lease not renewed (will retry)", "unit", name, "err", err)
}

// isTransient tells a renewal that may still succeed (a timeout, NATS away) from one the
// server refused because the entry is not ours any more.
func isTransient(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequence
	}
	return !errors.Is(err, jetstream.ErrKeyNotFound) && !errors.Is(err, jetstream.ErrKeyExists)
}

// preferred returns the units this instance should own: sorted units dealt round robin over
// the sorted live members.
func (g *group) preferred(ctx context.Context) (map[string]bool, bool) {
	keys, err := g.kv.ListKeysFiltered(ctx, g.memberKey("*"))
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			err = errors.New("not even this instance's member entry is there")
		}
		if !g.failing {
			g.o.Log.Warn("members not listed", "err", err)
		}
		return nil, false
	}
	var members []string
	for k := range keys.Keys() {
		members = append(members, strings.TrimPrefix(k, g.memberKey("")))
	}
	if !slices.Contains(members, g.o.Instance) {
		return nil, false // our own entry is not visible yet
	}
	slices.Sort(members)
	return Assign(g.names, members, g.o.Instance), true
}

// Assign is the preferred assignment: the units (sorted) dealt round robin over the members
// (sorted), the ones that fall to member.
func Assign(units, members []string, member string) map[string]bool {
	i := slices.Index(members, member)
	out := map[string]bool{}
	for j, u := range units {
		if i >= 0 && j%len(members) == i {
			out[u] = true
		}
	}
	return out
}

// take creates the unit's lease and starts it; a lease that exists belongs to someone else.
func (g *group) take(ctx, rctx context.Context, name string) {
	sent := time.Now()
	rev, err := g.kv.Create(rctx, g.leaseKey(name), []byte(g.o.Instance))
	if errors.Is(err, jetstream.ErrKeyExists) {
		rev, err = g.adopt(rctx, name)
	}
	if err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) {
			g.o.Log.Warn("lease not taken", "unit", name, "err", err)
		}
		return
	}
	uctx, cancel := context.WithCancelCause(ctx)
	u := &owned{rev: rev, deadline: sent.Add(g.o.TTL / 2), cancel: cancel, done: make(chan struct{})}
	g.owned[name] = u
	g.o.Log.Info("unit taken", "unit", name)
	if g.o.Observe != nil {
		g.o.Observe(name, true, time.Now())
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		defer func() {
			select {
			case g.wake <- struct{}{}:
			default:
			}
		}()
		defer close(u.done)
		err := g.runUnit(uctx, name)
		if g.o.Observe != nil {
			g.o.Observe(name, false, time.Now())
		}
		switch {
		case uctx.Err() == nil && err != nil:
			g.failed <- fmt.Errorf("%s: %w", name, err)
		case uctx.Err() == nil:
			g.o.Log.Info("unit stopped on its own: stopping the others", "unit", name)
			g.failed <- nil
		case err != nil && !errors.Is(err, context.Canceled) && !errors.Is(context.Cause(uctx), ErrLost):
			g.o.Log.Warn("unit stopped with an error", "unit", name, "err", err)
		}
	}()
}

// runUnit runs a unit until it ends for good: a Run that returns a transient NATS error while
// the unit is still owned is started again, after a backoff (100 ms, doubling up to 5 s).
func (g *group) runUnit(ctx context.Context, name string) error {
	backoff := 100 * time.Millisecond
	for {
		err := g.units[name].Run(ctx)
		if err == nil || ctx.Err() != nil || !natsx.Transient(err) {
			return err
		}
		g.o.Log.Warn("unit stopped on a NATS error that passes: starting it again", "unit", name, "after", backoff, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// adopt takes over a lease that still names this instance: one it stopped renewing when NATS
// was away for longer than TTL/2 (and so stopped the unit), but that has not expired yet. Only
// this instance writes its own name, and the compare-and-set fails if anyone else has written
// since, so it is as safe as a create; it saves waiting out the TTL after a NATS restart.
func (g *group) adopt(ctx context.Context, name string) (uint64, error) {
	e, err := g.kv.Get(ctx, g.leaseKey(name))
	if err != nil {
		return 0, err
	}
	if string(e.Value()) != g.o.Instance {
		return 0, jetstream.ErrKeyExists // someone else's
	}
	return g.kv.Update(ctx, g.leaseKey(name), []byte(g.o.Instance), e.Revision())
}

// lose cancels a unit whose lease is no longer ours, at once (ErrLost), and forgets it; the
// lease itself is left to expire or is already someone else's.
func (g *group) lose(name string, u *owned) {
	u.cancel(ErrLost)
	<-u.done
	delete(g.owned, name)
}

// release asks a unit to stop gracefully. It does not wait: the lease is renewed while the
// unit drains, and deleted once its Run returned (renewAll), so that its new owner can take
// it. Waiting here stopped every renewal of the instance for as long as the unit drained; a
// drain longer than the TTL let another instance take this unit, and the instance's other
// units, while they were still writing (TestScaleOut: rows short after a hand-over under
// load; TestReleaseKeepsRenewing).
func (g *group) release(name string, u *owned) {
	g.o.Log.Info("handing unit over", "unit", name)
	u.releasing = true
	u.cancel(errReleased)
}

// stopAll stops every unit (gracefully unless failed) and releases the leases, then removes
// the member entry, so that the others take the units over at once.
func (g *group) stopAll(graceful bool) {
	for name, u := range g.owned {
		switch {
		case !graceful:
			u.cancel(errReleased) // a unit failed: the process is going down, leases expire
		case !u.releasing:
			g.release(name, u)
		}
	}
	if graceful {
		// The units drain together; their leases are renewed meanwhile and released as
		// each one stops.
		t := time.NewTicker(g.o.TTL / 5)
		defer t.Stop()
		for len(g.owned) > 0 {
			rctx, cancel := context.WithTimeout(context.Background(), g.o.TTL/2)
			g.renewAll(rctx, time.Now())
			cancel()
			if len(g.owned) == 0 {
				break
			}
			select {
			case <-t.C:
			case <-g.wake:
			}
		}
	}
	g.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), g.o.TTL)
	defer cancel()
	if g.member != 0 {
		_ = g.kv.Delete(ctx, g.memberKey(g.o.Instance), jetstream.LastRevision(g.member))
	}
	g.o.Log.Info("left")
}
