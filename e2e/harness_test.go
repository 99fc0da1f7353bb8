// Package e2e holds the black-box acceptance tests of agentstate: each test
// runs the real `agentstate serve` binary as a child process and speaks the
// HTTP contract of API.md to it with net/http, so what they prove holds for
// the program users run, crashes and signals included.
//
// TestMain builds the binary once. Set AGENTSTATE_E2E_BINARY to test a
// prebuilt binary instead, and AGENTSTATE_E2E_RACE=1 to build it with the
// race detector.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the agentstate executable under test, set by TestMain.
var binary string

// Deadlines of the harness.
const (
	startTimeout = 20 * time.Second // until /healthz answers 200
	stopTimeout  = 10 * time.Second // SIGTERM to exit
	reqTimeout   = 15 * time.Second // one HTTP exchange
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if p := os.Getenv("AGENTSTATE_E2E_BINARY"); p != "" {
		binary = p
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "agentstate-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	binary = filepath.Join(dir, "agentstate")
	args := []string{"build", "-o", binary}
	if os.Getenv("AGENTSTATE_E2E_RACE") == "1" {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/agentstate")
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go %s (in %s) failed: %v\n%s", strings.Join(args, " "), root, err, out)
		return 1
	}
	return m.Run()
}

// moduleRoot is the directory of the go.mod this package belongs to.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err == nil {
		if gomod := strings.TrimSpace(string(out)); gomod != "" && gomod != os.DevNull {
			return filepath.Dir(gomod), nil
		}
	}
	abs, err := filepath.Abs("..")
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(abs, "go.mod")); err != nil {
		return "", fmt.Errorf("cannot find the module root (go env GOMOD failed and ../go.mod is missing): %w", err)
	}
	return abs, nil
}

// syncBuffer is a goroutine-safe buffer collecting a process's stderr.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// proc is one running `agentstate serve`.
type proc struct {
	t       testing.TB
	cmd     *exec.Cmd
	dataDir string
	addr    string // host:port it listens on
	base    string // http://host:port
	hc      *http.Client
	stderr  *syncBuffer

	done    chan struct{} // closed when the process has exited
	waitErr error         // valid after done
}

var listenRE = regexp.MustCompile(`listen=("?)([^\s"]+)`)

// startServer starts the binary on a free loopback port with dataDir as its
// data dir, waits until /healthz answers 200, and registers a cleanup that
// stops it (SIGTERM, then SIGKILL). It fails the test with the server's
// stderr if the server does not come up within startTimeout.
func startServer(t testing.TB, dataDir string) *proc {
	t.Helper()
	// Port 0: the kernel picks a free port and the server logs the address
	// it got ("agentstate serving" listen=ADDR), so no port can be stolen
	// between choosing and binding it.
	return startServerOn(t, dataDir, "127.0.0.1:0")
}

// startServerOn starts the server on a given address (a restart on the
// address clients already know).
func startServerOn(t testing.TB, dataDir, listen string) *proc {
	t.Helper()
	cmd := exec.Command(binary, "serve", "--listen", listen, "--data-dir", dataDir)
	cmd.Env = append(os.Environ(), "AGENTSTATE_CONFIG=", "AGENTSTATE_LISTEN=", "AGENTSTATE_DATA_DIR=", "AGENTSTATE_LOG_LEVEL=info")
	p := &proc{t: t, cmd: cmd, dataDir: dataDir, stderr: &syncBuffer{}, done: make(chan struct{})}
	pr, pw := io.Pipe()
	cmd.Stderr = io.MultiWriter(p.stderr, pw)
	cmd.Stdout = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", binary, err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		found := false
		for sc.Scan() {
			line := sc.Text()
			if !found && strings.Contains(line, "agentstate serving") {
				if m := listenRE.FindStringSubmatch(line); m != nil {
					found = true
					addrc <- m[2]
				}
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	t.Cleanup(func() { p.stop() })

	deadline := time.After(startTimeout)
	select {
	case p.addr = <-addrc:
	case <-p.done:
		t.Fatalf("agentstate serve exited before serving (%v); stderr:\n%s", p.waitErr, p.stderr.String())
	case <-deadline:
		t.Fatalf("agentstate serve did not log \"agentstate serving\" with listen=ADDR within %v; stderr:\n%s", startTimeout, p.stderr.String())
	}
	p.base = "http://" + p.addr
	p.hc = &http.Client{
		Timeout: reqTimeout,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        64,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     30 * time.Second,
		},
		// The API answers no redirects; a test must see one if it happens.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	for {
		resp, err := p.hc.Get(p.base + "/healthz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("agentstate serve exited before /healthz answered 200 (%v); stderr:\n%s", p.waitErr, p.stderr.String())
		case <-deadline:
			t.Fatalf("GET /healthz did not answer 200 within %v (last error %v); stderr:\n%s", startTimeout, err, p.stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// exited reports whether the process has exited.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill9 SIGKILLs the server and waits for it to be gone.
func (p *proc) kill9() {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		p.t.Fatalf("server pid %d did not die within %v of SIGKILL", p.cmd.Process.Pid, stopTimeout)
	}
	p.hc.CloseIdleConnections()
}

// terminate sends SIGTERM and waits up to timeout for the process to exit.
// It returns the exit code and how long the exit took; ok is false if the
// process was still running at the deadline (it is then killed).
func (p *proc) terminate(timeout time.Duration) (code int, took time.Duration, ok bool) {
	start := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		return -1, time.Since(start), false
	}
	if p.hc != nil {
		p.hc.CloseIdleConnections()
	}
	return p.cmd.ProcessState.ExitCode(), time.Since(start), true
}

// stop is the cleanup: SIGTERM, then SIGKILL. A clean exit is expected but
// not asserted here (TestSIGTERMDrainsAndExitsZero does).
func (p *proc) stop() {
	if p.exited() {
		return
	}
	if _, _, ok := p.terminate(stopTimeout); !ok {
		p.t.Errorf("server pid %d did not exit within %v of SIGTERM; killed it. stderr tail:\n%s", p.cmd.Process.Pid, stopTimeout, p.stderrTail())
	}
	if p.t.Failed() {
		p.t.Logf("server %s stderr tail:\n%s", p.addr, p.stderrTail())
	}
}

// stderrTail is the last lines of the server's stderr, for failure
// messages, without the access log of requests answered below 500.
func (p *proc) stderrTail() string {
	var lines []string
	for line := range strings.SplitSeq(strings.TrimRight(p.stderr.String(), "\n"), "\n") {
		if strings.Contains(line, `msg="http request"`) && !strings.Contains(line, "status=5") {
			continue
		}
		lines = append(lines, line)
	}
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return strings.Join(lines, "\n")
}

// response is one HTTP answer, fully read.
type response struct {
	Method string
	Target string // the request target as sent
	Status int
	Header http.Header
	Body   []byte
}

func (r *response) String() string {
	body := string(r.Body)
	if len(body) > 600 {
		body = body[:600] + fmt.Sprintf("... (%d bytes)", len(r.Body))
	}
	return fmt.Sprintf("%s %s -> %d %s", r.Method, r.Target, r.Status, strings.TrimSpace(body))
}

// decode unmarshals the body into v, failing the test if it is not JSON.
func (r *response) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("%s: answer is not the expected JSON: %v", r, err)
	}
}

// errorEnvelope is API.md's error body.
type errorEnvelope struct {
	Error *struct {
		Code    string          `json:"code"`
		Message string          `json:"message"`
		Details json.RawMessage `json:"details"`
	} `json:"error"`
}

// apiError decodes the error envelope of r; ok is false if r does not carry
// one.
func (r *response) apiError() (code, message string, details map[string]any, ok bool) {
	var env errorEnvelope
	if json.Unmarshal(r.Body, &env) != nil || env.Error == nil {
		return "", "", nil, false
	}
	if len(env.Error.Details) > 0 && string(env.Error.Details) != "null" {
		if json.Unmarshal(env.Error.Details, &details) != nil {
			return env.Error.Code, env.Error.Message, nil, false
		}
	}
	return env.Error.Code, env.Error.Message, details, true
}

// entry is API.md's entry object.
type entry struct {
	AgentID   string          `json:"agent_id"`
	Tier      string          `json:"tier"`
	Key       string          `json:"key"`
	Value     json.RawMessage `json:"value"`
	Version   int64           `json:"version"`
	Revision  int64           `json:"revision"`
	CreatedAt string          `json:"created_at"`
	UpdatedAt string          `json:"updated_at"`
	ExpiresAt *string         `json:"expires_at"`
	CreatedBy string          `json:"created_by"`
	Checksum  string          `json:"checksum"`
	Metadata  json.RawMessage `json:"metadata"`
}

// historyAnswer is the answer of GET /history.
type historyAnswer struct {
	CurrentVersion int64 `json:"current_version"`
	Versions       []struct {
		Version       int64  `json:"version"`
		ParentVersion *int64 `json:"parent_version"`
		Revision      int64  `json:"revision"`
		ChangeType    string `json:"change_type"`
	} `json:"versions"`
}

// send performs one exchange. target is the request target as sent on the
// request line (path and query), never cleaned or re-escaped, so tests can
// send paths such as /x/../y. body is nil, a string or []byte (sent as is),
// or any other value (sent as its JSON). err is a transport failure.
func (p *proc) send(ctx context.Context, method, target string, body any, header http.Header) (*response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	case io.Reader:
		rd = b
	default:
		js, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("marshal request body: %w", err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.base+"/", rd)
	if err != nil {
		return nil, err
	}
	path, query, _ := strings.Cut(target, "?")
	// Opaque is written verbatim as the request-target: Go neither cleans
	// dot segments nor re-escapes it.
	req.URL = &url.URL{Scheme: "http", Host: p.addr, Opaque: path, RawQuery: query}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading the answer: %w", method, target, err)
	}
	return &response{Method: method, Target: target, Status: resp.StatusCode, Header: resp.Header, Body: data}, nil
}

// do is send that fails the test on a transport error.
func (p *proc) do(t testing.TB, method, target string, body any) *response {
	t.Helper()
	r, err := p.send(context.Background(), method, target, body, nil)
	if err != nil {
		t.Fatalf("%s %s: transport error: %v\nserver stderr tail:\n%s", method, target, err, p.stderrTail())
	}
	return r
}

// must is do that also requires one of the given statuses.
func (p *proc) must(t testing.TB, method, target string, body any, status ...int) *response {
	t.Helper()
	r := p.do(t, method, target, body)
	for _, s := range status {
		if r.Status == s {
			return r
		}
	}
	t.Fatalf("%s\nwant status %v", r, status)
	return nil
}

// putValue writes value unconditionally and returns the entry answered.
func (p *proc) putValue(t testing.TB, agent, tier, key string, value any) entry {
	t.Helper()
	r := p.must(t, http.MethodPut, statePath(agent, tier, key), map[string]any{"value": value}, http.StatusOK, http.StatusCreated)
	var e entry
	r.decode(t, &e)
	return e
}

// getEntry reads the current entry; ok is false on 404.
func (p *proc) getEntry(t testing.TB, agent, tier, key string) (entry, bool) {
	t.Helper()
	r := p.must(t, http.MethodGet, statePath(agent, tier, key), nil, http.StatusOK, http.StatusNotFound)
	var e entry
	if r.Status == http.StatusNotFound {
		return e, false
	}
	r.decode(t, &e)
	return e, true
}

func statePath(agent, tier, key string) string {
	return "/v1/agents/" + agent + "/state/" + tier + "/" + key
}

func historyPath(agent, tier, key string) string {
	return "/v1/agents/" + agent + "/history/" + tier + "/" + key
}

// jsonEqual reports whether a and b are the same JSON value (object member
// order and number spelling aside).
func jsonEqual(a, b []byte) bool {
	var x, y any
	da := json.NewDecoder(bytes.NewReader(a))
	da.UseNumber()
	db := json.NewDecoder(bytes.NewReader(b))
	db.UseNumber()
	if da.Decode(&x) != nil || db.Decode(&y) != nil {
		return false
	}
	return deepEqualJSON(x, y)
}

func deepEqualJSON(x, y any) bool {
	switch xv := x.(type) {
	case map[string]any:
		yv, ok := y.(map[string]any)
		if !ok || len(xv) != len(yv) {
			return false
		}
		for k, v := range xv {
			w, ok := yv[k]
			if !ok || !deepEqualJSON(v, w) {
				return false
			}
		}
		return true
	case []any:
		yv, ok := y.([]any)
		if !ok || len(xv) != len(yv) {
			return false
		}
		for i := range xv {
			if !deepEqualJSON(xv[i], yv[i]) {
				return false
			}
		}
		return true
	case json.Number:
		yv, ok := y.(json.Number)
		if !ok {
			return false
		}
		if xv == yv {
			return true
		}
		xf, err1 := xv.Float64()
		yf, err2 := yv.Float64()
		return err1 == nil && err2 == nil && xf == yf
	default:
		return x == y
	}
}

// isTransportErr reports whether err is a failure to exchange with the
// server (expected while it is being killed), as opposed to a test bug.
func isTransportErr(err error) bool {
	var ne net.Error
	var oe *net.OpError
	var ue *url.Error
	return errors.As(err, &ne) || errors.As(err, &oe) || errors.As(err, &ue) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED)
}
