package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// Operation kinds of the register history.
const (
	opGet = iota
	opPut
	opCAS
)

// regInput is one client call on the key.
type regInput struct {
	kind     int
	value    int64 // put, cas
	expected int64 // cas: expected_version
}

// regOutput is what the server answered.
type regOutput struct {
	ok      bool  // get: found; put: written; cas: written (false: 409 version_conflict)
	version int64 // the entry's version answered (get, successful put/cas)
	value   int64 // get: the value read
}

// regState is the key in the sequential model: a versioned register.
type regState struct {
	version int64
	value   int64
}

// registerModel is the sequential specification of one key: GET reads the
// current version and value; an unconditional PUT writes version+1; a PUT
// with expected_version writes version+1 if the key is at that version and
// fails with 409 otherwise.
var registerModel = porcupine.Model{
	Init: func() any { return regState{version: 1, value: 0} },
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.(regState), input.(regInput), output.(regOutput)
		switch in.kind {
		case opGet:
			return out.ok && out.version == s.version && out.value == s.value, s
		case opPut:
			next := regState{version: s.version + 1, value: in.value}
			return out.ok && out.version == next.version, next
		case opCAS:
			if in.expected != s.version {
				return !out.ok, s
			}
			next := regState{version: s.version + 1, value: in.value}
			return out.ok && out.version == next.version, next
		}
		return false, s
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(regInput), output.(regOutput)
		switch in.kind {
		case opGet:
			return fmt.Sprintf("get() -> v%d=%d", out.version, out.value)
		case opPut:
			return fmt.Sprintf("put(%d) -> v%d", in.value, out.version)
		default:
			if !out.ok {
				return fmt.Sprintf("cas(v%d, %d) -> conflict", in.expected, in.value)
			}
			return fmt.Sprintf("cas(v%d, %d) -> v%d", in.expected, in.value, out.version)
		}
	},
	DescribeState: func(state any) string {
		s := state.(regState)
		return fmt.Sprintf("v%d=%d", s.version, s.value)
	},
}

// TestLinearizableKey proves DESIGN.md guarantee 3 on the embedded store:
// concurrent clients issue GETs, unconditional PUTs and PUTs with
// expected_version (compare-and-set) on one key; the recorded history of
// calls and answers, with their real-time intervals, is checked against a
// sequential versioned register with porcupine.
func TestLinearizableKey(t *testing.T) {
	const (
		clients      = 8
		opsPerClient = 250
		agent        = "lin-space"
		tier         = "shared"
		key          = "register"
	)
	p := startServer(t, t.TempDir())
	target := statePath(agent, tier, key)
	p.must(t, http.MethodPut, target, `{"value": 0, "expected_version": 0}`, http.StatusCreated)

	var (
		mu      sync.Mutex
		history []porcupine.Operation
		wg      sync.WaitGroup
		errs    = make(chan string, clients)
	)
	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }
	for c := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 42))
			lastSeen := int64(1) // the version this client last saw
			for i := range opsPerClient {
				in := regInput{kind: opGet}
				switch n := rng.IntN(10); {
				case n < 3:
					in = regInput{kind: opPut, value: int64(c*1000 + i + 1)}
				case n < 6:
					in = regInput{kind: opCAS, value: int64(c*1000 + i + 1), expected: lastSeen}
				}
				var (
					method = http.MethodGet
					body   any
				)
				switch in.kind {
				case opPut:
					method, body = http.MethodPut, fmt.Sprintf(`{"value": %d}`, in.value)
				case opCAS:
					method, body = http.MethodPut, fmt.Sprintf(`{"value": %d, "expected_version": %d}`, in.value, in.expected)
				}
				call := now()
				r, err := p.send(context.Background(), method, target, body, nil)
				ret := now()
				if err != nil {
					errs <- fmt.Sprintf("client %d: %s %s %v: %v (an unknown outcome: the history cannot be checked)", c, method, target, body, err)
					return
				}
				var out regOutput
				switch {
				case r.Status == http.StatusOK:
					var e entry
					if err := json.Unmarshal(r.Body, &e); err != nil {
						errs <- fmt.Sprintf("client %d: %s: %v", c, r, err)
						return
					}
					v, err := strconv.ParseInt(string(e.Value), 10, 64)
					if err != nil {
						errs <- fmt.Sprintf("client %d: %s: value is not an integer", c, r)
						return
					}
					out = regOutput{ok: true, version: e.Version, value: v}
					lastSeen = e.Version
				case r.Status == http.StatusConflict && in.kind == opCAS:
					if code, _, d, _ := r.apiError(); code != "version_conflict" {
						errs <- fmt.Sprintf("client %d: %s\nwant 409 version_conflict", c, r)
						return
					} else if rv, ok := d["remote_version"].(float64); ok {
						lastSeen = int64(rv)
					}
				default:
					errs <- fmt.Sprintf("client %d: %s\nwant 200 (or 409 version_conflict for a conditional PUT)", c, r)
					return
				}
				mu.Lock()
				history = append(history, porcupine.Operation{ClientId: c, Input: in, Call: call, Output: out, Return: ret})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if t.Failed() {
		t.FailNow()
	}

	checkStart := time.Now()
	res, info := porcupine.CheckOperationsVerbose(registerModel, history, 60*time.Second)
	switch res {
	case porcupine.Ok:
		t.Logf("%d operations by %d clients in %v: linearizable (checked in %v)", len(history), clients, time.Duration(history[len(history)-1].Return), time.Since(checkStart).Round(time.Millisecond))
	case porcupine.Unknown:
		t.Logf("porcupine timed out on %d operations: linearizability not decided", len(history))
	default:
		f, err := os.CreateTemp("", "agentstate-linearizability-*.html")
		if err == nil {
			_ = porcupine.Visualize(registerModel, info, f)
			f.Close()
			t.Errorf("the history of %d operations on %s is NOT linearizable; visualization: %s", len(history), target, f.Name())
		} else {
			t.Errorf("the history of %d operations on %s is NOT linearizable", len(history), target)
		}
	}
}

// TestRegisterModelRejectsBadHistories keeps the model honest: histories a
// correct server cannot produce must be refused by the checker.
func TestRegisterModelRejectsBadHistories(t *testing.T) {
	op := func(c int, in regInput, call, ret int64, out regOutput) porcupine.Operation {
		return porcupine.Operation{ClientId: c, Input: in, Call: call, Output: out, Return: ret}
	}
	for _, tc := range []struct {
		name string
		h    []porcupine.Operation
	}{
		// Two compare-and-sets from version 1 both succeed: a lost update.
		{"lost update", []porcupine.Operation{
			op(0, regInput{kind: opCAS, value: 10, expected: 1}, 0, 10, regOutput{ok: true, version: 2}),
			op(1, regInput{kind: opCAS, value: 20, expected: 1}, 20, 30, regOutput{ok: true, version: 2}),
		}},
		// A read after an acknowledged write sees the old value: a stale read.
		{"stale read", []porcupine.Operation{
			op(0, regInput{kind: opPut, value: 10}, 0, 10, regOutput{ok: true, version: 2}),
			op(1, regInput{kind: opGet}, 20, 30, regOutput{ok: true, version: 1, value: 0}),
		}},
	} {
		if porcupine.CheckOperations(registerModel, tc.h) {
			t.Errorf("%s: the model accepted a non-linearizable history", tc.name)
		}
	}
	ok := []porcupine.Operation{
		op(0, regInput{kind: opCAS, value: 10, expected: 1}, 0, 30, regOutput{ok: true, version: 2}),
		op(1, regInput{kind: opCAS, value: 20, expected: 1}, 5, 25, regOutput{ok: false}),
		op(2, regInput{kind: opGet}, 10, 20, regOutput{ok: true, version: 2, value: 10}),
	}
	if !porcupine.CheckOperations(registerModel, ok) {
		t.Errorf("the model refused a linearizable history")
	}
}
