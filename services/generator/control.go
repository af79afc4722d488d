package generator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Control endpoints. The same operations answer over HTTP (on the service's HTTP server) and
// NATS request/reply, so that sessionize-style scripts work with curl or with the nats CLI.
const (
	SubjectPause  = "jetsuite.generator.pause"
	SubjectResume = "jetsuite.generator.resume"
	SubjectStatus = "jetsuite.generator.status"
	SubjectRate   = "jetsuite.generator.rate"

	PathPause  = "/generator/pause"
	PathResume = "/generator/resume"
	PathStatus = "/generator/status"
	PathRate   = "/generator/rate"
)

// MaxRate is the most events per second SetRate accepts for one quickstart.
const MaxRate = 100_000

// ErrUnknownQuickstart is returned for a quickstart name the generator does not run.
var ErrUnknownQuickstart = errors.New("unknown quickstart")

// QuickstartStatus is one quickstart's line in Status.
type QuickstartStatus struct {
	Name    string `json:"name"`
	Subject string `json:"subject"`
	// Rate is events per second (0 for the scheduled customers source).
	Rate float64 `json:"rate"`
	// Paused by an operator; SessionizePaused by the --sessionize schedule.
	Paused           bool `json:"paused"`
	SessionizePaused bool `json:"sessionize_paused"`
	// Iteration is the next event's n (= events generated so far, across restarts).
	Iteration uint64 `json:"iteration"`
}

// Status is what the status endpoints return.
type Status struct {
	Seed        uint64             `json:"seed"`
	Sessionize  bool               `json:"sessionize"`
	Started     time.Time          `json:"started,omitzero"`
	Quickstarts []QuickstartStatus `json:"quickstarts"`
}

// Status reports every quickstart.
func (s *Service) Status() Status {
	st := Status{Seed: s.seed.Load(), Sessionize: s.cfg.Sessionize, Quickstarts: []QuickstartStatus{}}
	if ns := s.started.Load(); ns != 0 {
		st.Started = time.Unix(0, ns).UTC()
	}
	for _, src := range s.sources {
		st.Quickstarts = append(st.Quickstarts, QuickstartStatus{
			Name: src.name, Subject: src.subject, Rate: math.Float64frombits(src.wantRate.Load()),
			Paused: src.paused.Load(), SessionizePaused: src.sessionPaused.Load(),
			Iteration: src.count.Load(),
		})
	}
	return st
}

// Pause pauses one quickstart (by name or subject), or all when name is empty.
func (s *Service) Pause(name string) error { return s.setPaused(name, true) }

// Resume resumes one quickstart (by name or subject), or all when name is empty.
func (s *Service) Resume(name string) error { return s.setPaused(name, false) }

func (s *Service) setPaused(name string, paused bool) error {
	name = strings.TrimSpace(name)
	found := false
	for _, src := range s.sources {
		if name == "" || name == src.name || name == src.subject {
			src.paused.Store(paused)
			found = true
		}
	}
	if !found {
		return fmt.Errorf("%w %q", ErrUnknownQuickstart, name)
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	what := name
	if what == "" {
		what = "all"
	}
	s.log.Info("generator control", "paused", paused, "quickstart", what)
	return nil
}

// SetRate sets the events per second of one quickstart (by name or subject) until the
// generator restarts (then the configured rate applies again). The scheduled customers source
// has no rate.
func (s *Service) SetRate(name string, rate float64) error {
	if math.IsNaN(rate) || rate < 0 || rate > MaxRate {
		return fmt.Errorf("rate must be 0..%d events per second", MaxRate)
	}
	name = strings.TrimSpace(name)
	for _, src := range s.sources {
		if name != src.name && name != src.subject {
			continue
		}
		if src.delay != nil {
			return fmt.Errorf("%s follows a schedule, not a rate", src.name)
		}
		src.wantRate.Store(math.Float64bits(rate))
		select {
		case s.wake <- struct{}{}:
		default:
		}
		s.log.Info("generator control", "quickstart", src.name, "rate", rate)
		return nil
	}
	return fmt.Errorf("%w %q", ErrUnknownQuickstart, name)
}

// rateArg reads {"quickstart": "...", "rate": n}.
func rateArg(body []byte) (string, float64, error) {
	var req struct {
		Quickstart string   `json:"quickstart"`
		Rate       *float64 `json:"rate"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.Rate == nil || req.Quickstart == "" {
		return "", 0, errors.New(`body must be {"quickstart": "clickstream", "rate": 50}`)
	}
	return req.Quickstart, *req.Rate, nil
}

// quickstartArg reads the optional quickstart from a request body: empty (all), a JSON object
// {"quickstart": "..."} or the bare name.
func quickstartArg(body []byte) (string, error) {
	b := strings.TrimSpace(string(body))
	if b == "" {
		return "", nil
	}
	if strings.HasPrefix(b, "{") {
		var req struct {
			Quickstart string `json:"quickstart"`
		}
		if err := json.Unmarshal([]byte(b), &req); err != nil {
			return "", fmt.Errorf("bad request body: %w", err)
		}
		return req.Quickstart, nil
	}
	return b, nil
}

func (s *Service) registerHTTP(mux *http.ServeMux) {
	control := func(paused bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			name := r.URL.Query().Get("quickstart")
			if name == "" {
				body, err := io.ReadAll(io.LimitReader(r.Body, 4096))
				if err == nil {
					name, err = quickstartArg(body)
				}
				if err != nil {
					writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
					return
				}
			}
			if err := s.setPaused(name, paused); err != nil {
				writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
				return
			}
			writeJSON(w, http.StatusOK, s.Status())
		}
	}
	mux.HandleFunc("POST "+PathPause, control(true))
	mux.HandleFunc("POST "+PathResume, control(false))
	mux.HandleFunc("POST "+PathRate, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 4096))
		name, rate, err := rateArg(body)
		if err == nil {
			err = s.SetRate(name, rate)
		}
		switch {
		case errors.Is(err, ErrUnknownQuickstart):
			writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
		case err != nil:
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		default:
			writeJSON(w, http.StatusOK, s.Status())
		}
	})
	mux.HandleFunc("GET "+PathStatus, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Status())
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// subscribeControl answers the control subjects. Every generator instance subscribes (no queue
// group), so a pause reaches all of them; the requester gets the first reply.
func (s *Service) subscribeControl() ([]*nats.Subscription, error) {
	reply := func(m *nats.Msg, v any) {
		b, _ := json.Marshal(v)
		_ = m.Respond(b)
	}
	control := func(paused bool) nats.MsgHandler {
		return func(m *nats.Msg) {
			name, err := quickstartArg(m.Data)
			if err == nil {
				err = s.setPaused(name, paused)
			}
			if err != nil {
				reply(m, map[string]string{"error": err.Error()})
				return
			}
			reply(m, s.Status())
		}
	}
	var subs []*nats.Subscription
	for subj, h := range map[string]nats.MsgHandler{
		SubjectPause:  control(true),
		SubjectResume: control(false),
		SubjectStatus: func(m *nats.Msg) { reply(m, s.Status()) },
		SubjectRate: func(m *nats.Msg) {
			name, rate, err := rateArg(m.Data)
			if err == nil {
				err = s.SetRate(name, rate)
			}
			if err != nil {
				reply(m, map[string]string{"error": err.Error()})
				return
			}
			reply(m, s.Status())
		},
	} {
		sub, err := s.deps.NC.Subscribe(subj, h)
		if err != nil {
			for _, o := range subs {
				_ = o.Unsubscribe()
			}
			return nil, fmt.Errorf("generator: subscribe %s: %w", subj, err)
		}
		subs = append(subs, sub)
	}
	return subs, nil
}
