package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ack is one write the server acknowledged with a 2xx.
type ack struct {
	key      string
	version  int64
	revision int64
	value    []byte
}

// TestAcknowledgedWritesSurviveKill9 proves DESIGN.md guarantee 1: a write
// the server acknowledged is durable. Concurrent writers (single PUTs and
// atomic batches) load the server, which is SIGKILLed mid-load three times,
// restarting on the same data dir in between; afterwards every acknowledged
// version of every key reads back with the value written, batches are all or
// nothing, versions have no holes, no revision was answered twice, and the
// store revision keeps growing.
func TestAcknowledgedWritesSurviveKill9(t *testing.T) {
	const (
		writers      = 8
		keysPerW     = 4
		rounds       = 3
		loadDuration = 1200 * time.Millisecond
		agent        = "durable-agent"
		tier         = "persistent" // keeps every version, so ?version=N of any ack exists
	)
	dataDir := t.TempDir()

	var (
		mu   sync.Mutex
		acks []ack
		// last acked version per key; a key is written by one goroutine
		// only, so its acknowledged versions must be 1, 2, 3, … in order.
		lastVer = map[string]int64{}
	)
	var (
		maxRev    int64
		batchKeys = []string{"batch/a", "batch/b", "batch/c"}
		batchSeq  int64   // last acknowledged batch
		batchRevs []int64 // revisions of acknowledged batches
	)
	roundStart := 0 // index in acks of the previous round's first ack
	for round := range rounds {
		p := startServer(t, dataDir)
		if round > 0 {
			batchSeq = checkBatch(t, p, agent, tier, batchKeys, batchSeq)
			// Everything acknowledged before the previous kill is there
			// (every version is checked again at the end). The write in
			// flight at the kill may have landed too: go on from the
			// versions the keys are at now.
			for k, v := range checkAcks(t, p, agent, tier, acks[roundStart:], lastVer) {
				lastVer[k] = v
			}
			if t.Failed() {
				t.FailNow()
			}
		}
		roundStart = len(acks)
		var (
			wg       sync.WaitGroup
			stop     atomic.Bool
			nAcked   atomic.Int64
			failures = make(chan string, writers+1)
		)
		for w := range writers {
			wg.Go(func() {
				for seq := 0; !stop.Load(); seq++ {
					key := fmt.Sprintf("w%d/k%d", w, seq%keysPerW)
					val := fmt.Sprintf(`{"writer":%d,"round":%d,"seq":%d,"pad":"%0100d"}`, w, round, seq, seq)
					body := `{"value":` + val + `}`
					r, err := p.send(context.Background(), http.MethodPut, statePath(agent, tier, key), body, nil)
					if err != nil {
						if stop.Load() || p.exited() || isTransportErr(err) {
							return // killed under us: this write is not acknowledged
						}
						failures <- fmt.Sprintf("writer %d: PUT %s: %v", w, key, err)
						return
					}
					if r.Status != http.StatusOK && r.Status != http.StatusCreated {
						failures <- fmt.Sprintf("writer %d: %s\nwant 200 or 201", w, r)
						return
					}
					var e entry
					if err := json.Unmarshal(r.Body, &e); err != nil {
						failures <- fmt.Sprintf("writer %d: %s: not an entry: %v", w, r, err)
						return
					}
					mu.Lock()
					if want := lastVer[key] + 1; e.Version != want {
						mu.Unlock()
						failures <- fmt.Sprintf("writer %d: %s\nversions of a key written by one writer must be dense: want version %d, got %d", w, r, want, e.Version)
						return
					}
					lastVer[key] = e.Version
					acks = append(acks, ack{key: key, version: e.Version, revision: e.Revision, value: []byte(val)})
					mu.Unlock()
					nAcked.Add(1)
				}
			})
		}
		// One more writer commits atomic batches of three keys, each batch
		// writing the same sequence number to all three.
		wg.Go(func() {
			for !stop.Load() {
				seq := batchSeq + 1
				var ops []string
				for _, k := range batchKeys {
					ops = append(ops, fmt.Sprintf(`{"op": "put", "tier": %q, "key": %q, "value": {"seq": %d}}`, tier, k, seq))
				}
				body := `{"ops": [` + strings.Join(ops, ",") + `]}`
				r, err := p.send(context.Background(), http.MethodPost, "/v1/agents/"+agent+"/batch/write", body, nil)
				if err != nil {
					if stop.Load() || p.exited() || isTransportErr(err) {
						return
					}
					failures <- fmt.Sprintf("batch writer: %v", err)
					return
				}
				var res struct {
					Revision int64 `json:"revision"`
					Results  []struct {
						Key     string `json:"key"`
						Version int64  `json:"version"`
					} `json:"results"`
				}
				if r.Status != http.StatusOK || json.Unmarshal(r.Body, &res) != nil || len(res.Results) != len(batchKeys) || res.Revision == 0 {
					failures <- fmt.Sprintf("batch writer: %s\nwant 200 {revision, results} with %d results", r, len(batchKeys))
					return
				}
				mu.Lock()
				batchSeq = seq
				batchRevs = append(batchRevs, res.Revision)
				mu.Unlock()
			}
		})
		time.Sleep(loadDuration)
		p.kill9() // mid-load: writers are in flight
		stop.Store(true)
		wg.Wait()
		close(failures)
		for f := range failures {
			t.Error(f)
		}
		if t.Failed() {
			t.FailNow()
		}
		if nAcked.Load() == 0 {
			t.Fatalf("round %d: no write was acknowledged in %v; server stderr tail:\n%s", round, loadDuration, p.stderrTail())
		}
		t.Logf("round %d: %d writes and batch %d acknowledged before SIGKILL", round, nAcked.Load(), batchSeq)
	}
	// Each acknowledged change has its own revision.
	seen := map[int64]string{}
	for _, a := range acks {
		maxRev = max(maxRev, a.revision)
		if prev, dup := seen[a.revision]; dup {
			t.Errorf("revision %d was answered for two writes: %s and %s v%d", a.revision, prev, a.key, a.version)
		}
		seen[a.revision] = fmt.Sprintf("%s v%d", a.key, a.version)
	}
	for _, r := range batchRevs {
		maxRev = max(maxRev, r)
		if prev, dup := seen[r]; dup {
			t.Errorf("revision %d was answered for a batch and for %s", r, prev)
		}
		seen[r] = "a batch"
	}

	p := startServer(t, dataDir)
	current := checkAcks(t, p, agent, tier, acks, lastVer)
	checkBatch(t, p, agent, tier, batchKeys, batchSeq)

	// Crashes left no hole in any key's versions.
	for k, cur := range current {
		vs := fullHistory(t, p, agent, tier, k)
		if int64(len(vs)) != cur {
			t.Errorf("history of %s after the kills has %d versions; want %d (1..%d, dense)", k, len(vs), cur, cur)
			continue
		}
		for i, v := range vs {
			if want := cur - int64(i); v.Version != want {
				t.Errorf("history of %s after the kills: versions[%d] = %d; want %d (dense, newest first)", k, i, v.Version, want)
				break
			}
		}
	}

	// The revision keeps growing after a restart: no revision is reused.
	e := p.putValue(t, agent, tier, "after-restart", map[string]any{"ok": true})
	if e.Revision <= maxRev {
		t.Errorf("PUT after restart got revision %d; want > %d, the highest acknowledged before the kill", e.Revision, maxRev)
	}
	e2 := p.putValue(t, agent, tier, "after-restart", map[string]any{"ok": 2})
	if e2.Revision <= e.Revision {
		t.Errorf("second PUT after restart got revision %d; want > %d", e2.Revision, e.Revision)
	}
}

// historyVersion is one item of a history answer.
type historyVersion struct {
	Version    int64  `json:"version"`
	Revision   int64  `json:"revision"`
	ChangeType string `json:"change_type"`
}

// fullHistory reads every version of a key, newest first, page by page.
func fullHistory(t *testing.T, p *proc, agent, tier, key string) []historyVersion {
	t.Helper()
	var all []historyVersion
	before := int64(0)
	for {
		target := historyPath(agent, tier, key) + "?limit=1000"
		if before > 0 {
			target += fmt.Sprintf("&before_version=%d", before)
		}
		var h struct {
			Versions []historyVersion `json:"versions"`
		}
		p.must(t, http.MethodGet, target, nil, http.StatusOK).decode(t, &h)
		all = append(all, h.Versions...)
		if len(h.Versions) < 1000 {
			return all
		}
		before = h.Versions[len(h.Versions)-1].Version
	}
}

// checkBatch checks that the batch keys were written all or nothing: the
// three hold the same sequence number at the same version and revision,
// which is the last acknowledged batch or the one in flight at the kill. It
// returns the sequence number found.
func checkBatch(t *testing.T, p *proc, agent, tier string, keys []string, acked int64) int64 {
	t.Helper()
	var (
		first entry
		seq   int64
	)
	for i, k := range keys {
		e, ok := p.getEntry(t, agent, tier, k)
		if !ok {
			if acked > 0 {
				t.Errorf("GET %s after restart: 404, but %d batches writing it were acknowledged", statePath(agent, tier, k), acked)
			}
			continue
		}
		var v struct {
			Seq int64 `json:"seq"`
		}
		if err := json.Unmarshal(e.Value, &v); err != nil {
			t.Errorf("GET %s: value %s: %v", statePath(agent, tier, k), e.Value, err)
			continue
		}
		if i == 0 {
			first, seq = e, v.Seq
			if seq < acked || seq > acked+1 {
				t.Errorf("GET %s after restart: batch seq %d; want %d (last acknowledged batch) or %d (the one in flight)", statePath(agent, tier, k), seq, acked, acked+1)
			}
			continue
		}
		if v.Seq != seq || e.Version != first.Version || e.Revision != first.Revision {
			t.Errorf("a batch was not all or nothing across the kill: %s has seq %d version %d revision %d, %s has seq %d version %d revision %d",
				keys[0], seq, first.Version, first.Revision, k, v.Seq, e.Version, e.Revision)
		}
	}
	return seq
}

// checkAcks checks that every acknowledged write reads back: the current
// version of each key is at least the last acknowledged one (and at most one
// more: the single unacknowledged write in flight at the kill), and each
// acknowledged version reads, with ?version=N, the value written.
// It returns the current version of each key.
func checkAcks(t *testing.T, p *proc, agent, tier string, acks []ack, lastVer map[string]int64) map[string]int64 {
	t.Helper()
	current := make(map[string]int64, len(lastVer))
	keys := make([]string, 0, len(lastVer))
	for k := range lastVer {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		e, ok := p.getEntry(t, agent, tier, k)
		if !ok {
			t.Errorf("GET %s after restart: 404; want version >= %d (acknowledged before SIGKILL)", statePath(agent, tier, k), lastVer[k])
			continue
		}
		current[k] = e.Version
		if e.Version < lastVer[k] || e.Version > lastVer[k]+1 {
			t.Errorf("GET %s after restart: version %d; want %d (last acknowledged) or %d (the write in flight at the kill)", statePath(agent, tier, k), e.Version, lastVer[k], lastVer[k]+1)
		}
	}
	// Every acknowledged version, through a few concurrent readers.
	var (
		wg   sync.WaitGroup
		next atomic.Int64
		errs = make(chan string, len(acks))
	)
	for range 4 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(acks) {
					return
				}
				a := acks[i]
				target := fmt.Sprintf("%s?version=%d", statePath(agent, tier, a.key), a.version)
				r, err := p.send(context.Background(), http.MethodGet, target, nil, nil)
				if err != nil {
					errs <- fmt.Sprintf("GET %s: %v", target, err)
					continue
				}
				if r.Status != http.StatusOK {
					errs <- fmt.Sprintf("acknowledged write lost: %s\nwant 200 with value %s", r, a.value)
					continue
				}
				var e entry
				if err := json.Unmarshal(r.Body, &e); err != nil {
					errs <- fmt.Sprintf("%s: not an entry: %v", r, err)
					continue
				}
				if e.Version != a.version || !jsonEqual(e.Value, a.value) {
					errs <- fmt.Sprintf("acknowledged write changed: %s\nwant version %d value %s", r, a.version, a.value)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	n := 0
	for e := range errs {
		if n++; n <= 20 {
			t.Error(e)
		}
	}
	if n > 20 {
		t.Errorf("... and %d more acknowledged writes failed to read back", n-20)
	}
	return current
}
