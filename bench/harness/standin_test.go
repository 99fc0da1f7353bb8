package harness

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// standin is a tiny in-memory stand-in for the agentstate HTTP API: just
// enough of PUT/GET .../state/{tier}/{key...}, batch/write and /healthz to
// exercise the harness. It checks what the harness sends.
type standin struct {
	mu      sync.Mutex
	entries map[string]entry
	rev     int64

	noBatch   bool                   // answer 404 to batch/write
	failEvery int64                  // if > 0, every n-th PUT answers 503
	puts      atomic.Int64           // PUTs received
	gets      atomic.Int64           // GETs received
	batches   atomic.Int64           // batch writes received
	bad       atomic.Int64           // malformed requests
	badWhy    atomic.Pointer[string] // the last malformed request
	sizes     sync.Map               // value sizes seen by PUT -> struct{}

	// change feed (GET /v1/events), guarded by mu
	log   []standinEvent // every change, in revision order
	subs  map[*standinSub]struct{}
	opens atomic.Int64 // event streams opened
	// dropAfter, if > 0, ends the first event stream opened after that
	// many events (a disconnect the client must resume from).
	dropAfter int
	// dupEvery, if > 0, sends every n-th live event twice.
	dupEvery int
}

type standinEvent struct {
	Revision   int64           `json:"revision"`
	AgentID    string          `json:"agent_id"`
	Tier       string          `json:"tier"`
	StateKey   string          `json:"state_key"`
	ChangeType string          `json:"change_type"`
	OldValue   json.RawMessage `json:"old_value"`
	NewValue   json.RawMessage `json:"new_value"`
	Version    int64           `json:"version"`
	Timestamp  string          `json:"timestamp"`
}

type standinSub struct {
	agent, tier, prefix string
	ch                  chan standinEvent
}

func (sub *standinSub) match(e standinEvent) bool {
	return (sub.agent == "" || sub.agent == e.AgentID) && (sub.tier == "" || sub.tier == e.Tier) &&
		strings.HasPrefix(e.StateKey, sub.prefix)
}

type entry struct {
	AgentID  string          `json:"agent_id"`
	Tier     string          `json:"tier"`
	Key      string          `json:"key"`
	Value    json.RawMessage `json:"value"`
	Version  int64           `json:"version"`
	Revision int64           `json:"revision"`
}

func newStandin() *standin {
	return &standin{entries: map[string]entry{}, subs: map[*standinSub]struct{}{}}
}

func (s *standin) fail(w http.ResponseWriter, status int, code, why string) {
	if status == 400 {
		s.bad.Add(1)
		s.badWhy.Store(&why)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":{"code":%q,"message":%q}}`, code, why)
}

func (s *standin) put(agent, tier, key string, value json.RawMessage) (entry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := agent + "\x00" + tier + "\x00" + key
	e, existed := s.entries[k]
	s.rev++
	old := e.Value
	if !existed {
		old = json.RawMessage("null")
	}
	e = entry{AgentID: agent, Tier: tier, Key: key, Value: value, Version: e.Version + 1, Revision: s.rev}
	s.entries[k] = e
	ct := "update"
	if !existed {
		ct = "create"
	}
	ev := standinEvent{Revision: s.rev, AgentID: agent, Tier: tier, StateKey: key, ChangeType: ct,
		OldValue: old, NewValue: value, Version: e.Version, Timestamp: time.Now().UTC().Format(time.RFC3339Nano)}
	s.log = append(s.log, ev)
	for sub := range s.subs {
		if sub.match(ev) {
			select {
			case sub.ch <- ev:
			default: // a stand-in subscriber that falls behind loses its stream
				close(sub.ch)
				delete(s.subs, sub)
			}
		}
	}
	return e, !existed
}

func (s *standin) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("PUT /v1/agents/{agent}/state/{tier}/{key...}", func(w http.ResponseWriter, r *http.Request) {
		n := s.puts.Add(1)
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			s.fail(w, 400, "invalid_argument", "content type "+ct)
			return
		}
		var body struct {
			Value json.RawMessage `json:"value"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || len(body.Value) == 0 {
			s.fail(w, 400, "invalid_argument", fmt.Sprintf("body: %v", err))
			return
		}
		if !json.Valid(body.Value) {
			s.fail(w, 400, "invalid_argument", "value is not JSON")
			return
		}
		if s.failEvery > 0 && n%s.failEvery == 0 {
			s.fail(w, 503, "unavailable", "stand-in refuses this one")
			return
		}
		s.sizes.Store(len(body.Value), struct{}{})
		e, created := s.put(r.PathValue("agent"), r.PathValue("tier"), r.PathValue("key"), body.Value)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("ETag", fmt.Sprintf("%q", fmt.Sprint(e.Version)))
		if created {
			w.WriteHeader(201)
		}
		json.NewEncoder(w).Encode(e)
	})
	mux.HandleFunc("GET /v1/agents/{agent}/state/{tier}/{key...}", func(w http.ResponseWriter, r *http.Request) {
		s.gets.Add(1)
		if c := r.URL.Query().Get("consistency"); c != "" && c != "strong" {
			s.fail(w, 400, "invalid_argument", "harness asked for consistency="+c)
			return
		}
		s.mu.Lock()
		e, ok := s.entries[r.PathValue("agent")+"\x00"+r.PathValue("tier")+"\x00"+r.PathValue("key")]
		s.mu.Unlock()
		if !ok {
			s.fail(w, 404, "not_found", "no such key")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(e)
	})
	mux.HandleFunc("GET /v1/events", s.events)
	mux.HandleFunc("POST /v1/agents/{agent}/batch/write", func(w http.ResponseWriter, r *http.Request) {
		if s.noBatch {
			http.NotFound(w, r)
			return
		}
		s.batches.Add(1)
		var body struct {
			Ops []struct {
				Op    string          `json:"op"`
				Tier  string          `json:"tier"`
				Key   string          `json:"key"`
				Value json.RawMessage `json:"value"`
			} `json:"ops"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			s.fail(w, 400, "invalid_argument", err.Error())
			return
		}
		type result struct {
			Tier    string `json:"tier"`
			Key     string `json:"key"`
			Version int64  `json:"version"`
		}
		var out struct {
			Revision int64    `json:"revision"`
			Results  []result `json:"results"`
		}
		for _, op := range body.Ops {
			if op.Op != "put" || op.Tier == "" || op.Key == "" || !json.Valid(op.Value) {
				s.fail(w, 400, "invalid_argument", fmt.Sprintf("bad op %+v", op))
				return
			}
		}
		for _, op := range body.Ops {
			e, _ := s.put(r.PathValue("agent"), op.Tier, op.Key, op.Value)
			out.Revision = e.Revision
			out.Results = append(out.Results, result{op.Tier, op.Key, e.Version})
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
	})
	return mux
}

// events is a small GET /v1/events: agent_id, tier, key (a "prefix*"
// glob) and from_revision; `id:` on every event, `: ping` comments.
func (s *standin) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	glob := q.Get("key")
	prefix, ok := strings.CutSuffix(glob, "*")
	if glob != "" && (!ok || strings.ContainsAny(prefix, "*?")) {
		s.fail(w, 400, "invalid_argument", "stand-in supports prefix* globs only: "+glob)
		return
	}
	from := int64(-1)
	if v := q.Get("from_revision"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			s.fail(w, 400, "invalid_argument", "from_revision "+v)
			return
		}
		from = n
	}
	sub := &standinSub{agent: q.Get("agent_id"), tier: q.Get("tier"), prefix: prefix, ch: make(chan standinEvent, 1<<16)}
	first := s.opens.Add(1) == 1
	s.mu.Lock()
	var backlog []standinEvent
	if from >= 0 {
		for _, e := range s.log {
			if e.Revision > from && sub.match(e) {
				backlog = append(backlog, e)
			}
		}
	}
	s.subs[sub] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.subs, sub)
		s.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(200)
	fmt.Fprint(w, ": ping\n\n")
	w.(http.Flusher).Flush()
	sent := 0
	send := func(e standinEvent) bool {
		b, _ := json.Marshal(e)
		fmt.Fprintf(w, "id: %d\nevent: change\ndata: %s\n\n", e.Revision, b)
		sent++
		if s.dupEvery > 0 && sent%s.dupEvery == 0 {
			fmt.Fprintf(w, "id: %d\nevent: change\ndata: %s\n\n", e.Revision, b)
		}
		w.(http.Flusher).Flush()
		return !(first && s.dropAfter > 0 && sent >= s.dropAfter)
	}
	for _, e := range backlog {
		if !send(e) {
			return
		}
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case e, ok := <-sub.ch:
			if !ok {
				fmt.Fprint(w, "event: error\ndata: {\"error\":{\"code\":\"unavailable\"}}\n\n")
				return
			}
			if !send(e) {
				return
			}
		case <-tick.C:
			fmt.Fprint(w, ": ping\n\n")
			w.(http.Flusher).Flush()
		case <-r.Context().Done():
			return
		}
	}
}

// TestMain doubles as a stand-in `agentstate serve` process when
// BENCH_STANDIN_SERVE=1, so StartAgentstate can be tested with the test
// binary as the server binary.
func TestMain(m *testing.M) {
	if os.Getenv("BENCH_STANDIN_SERVE") == "1" {
		os.Exit(standinServe(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func standinServe(args []string) int {
	if len(args) == 0 || args[0] != "serve" {
		fmt.Fprintln(os.Stderr, "standin: want `serve`")
		return 2
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:7400", "")
	dataDir := fs.String("data-dir", "./agentstate-data", "")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if err := os.MkdirAll(*dataDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv := &http.Server{Handler: newStandin().handler()}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	fmt.Fprintln(os.Stderr, "standin serving on", *listen)
	if err := srv.Serve(l); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// count is the number of keys stored.
func (s *standin) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}
