package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/agentstate/agentstate/auth"
	"github.com/agentstate/agentstate/feed"
	"github.com/agentstate/agentstate/state"
)

// The change feed and writes over WebSocket (API.md "Change events", /v1/ws):
// JSON text messages, several subscriptions per socket, writes answered by
// request_id, errors as messages.

// WebSocket limits.
const (
	// MaxSubscriptionsPerSocket bounds the live subscriptions of one socket.
	MaxSubscriptionsPerSocket = 64
	// wsPingInterval: how often the server pings; a peer that does not
	// answer within wsPingTimeout is disconnected.
	wsPingInterval = 30 * time.Second
	wsPingTimeout  = 10 * time.Second
	// wsWriteTimeout bounds one message write to a slow peer.
	wsWriteTimeout = 30 * time.Second
	// wsOutQueue is the per-socket queue of outgoing messages. When it is
	// full, subscription pumps wait, their hub buffers fill, and a consumer
	// that stays behind is cut off by the hub with resume_from.
	wsOutQueue = 256
)

// wsIn is every client message; which fields count depends on Type.
type wsIn struct {
	Type      string `json:"type"`
	ID        string `json:"id"`         // subscribe, unsubscribe
	RequestID string `json:"request_id"` // put, patch, delete

	// subscribe
	Filter       *wsFilter `json:"filter"`
	FromRevision *int64    `json:"from_revision"`
	OnCompacted  string    `json:"on_compacted"`

	// put, patch, delete: the HTTP bodies' fields plus the address.
	AgentID         string          `json:"agent_id"`
	Tier            string          `json:"tier"`
	Key             string          `json:"key"`
	Value           json.RawMessage `json:"value"`
	JSONPatch       json.RawMessage `json:"json_patch"`
	MergePatch      json.RawMessage `json:"merge_patch"`
	ExpectedVersion *int64          `json:"expected_version"`
	TTLSeconds      *int64          `json:"ttl_seconds"`
	ChangeSummary   string          `json:"change_summary"`
	Metadata        json.RawMessage `json:"metadata"`
	Strategy        string          `json:"strategy"`
	LockID          string          `json:"lock_id"`
}

// wsFilter takes each list as a list or a single string (API.md).
type wsFilter struct {
	AgentID    stringList `json:"agent_id"`
	Tier       stringList `json:"tier"`
	Key        string     `json:"key"`
	ChangeType stringList `json:"change_type"`
}

type stringList []string

func (l *stringList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*l = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("must be a string or a list of strings")
	}
	*l = many
	return nil
}

type wsOut struct {
	Type         string           `json:"type"`
	Subscription string           `json:"subscription,omitempty"`
	RequestID    string           `json:"request_id,omitempty"`
	Event        json.RawMessage  `json:"event,omitempty"`
	Snapshot     *snapshotMsgJSON `json:"snapshot,omitempty"`
	Entry        *entryJSON       `json:"entry,omitempty"`
	Version      int64            `json:"version,omitempty"`  // delete results
	Revision     int64            `json:"revision,omitempty"` // delete results
	Error        *errorJSON       `json:"error,omitempty"`
}

// wsConn is one socket's state.
type wsConn struct {
	s    *Server
	c    *websocket.Conn
	ctx  context.Context
	stop context.CancelFunc
	out  chan []byte
	wg   sync.WaitGroup

	mu   sync.Mutex
	subs map[string]*feed.Subscription
}

// websocket: GET /v1/ws
func (s *Server) websocket(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil) // same-origin browsers and any non-browser client
	if err != nil {
		return // Accept answered the handshake error itself
	}
	c.SetReadLimit(s.singleLimit)
	// After the upgrade the request's context is the hijacked connection's;
	// the socket lives until the peer or the server ends it.
	base, stopBase := s.streamContext(r)
	defer stopBase()
	ctx, stop := context.WithCancel(auth.WithPrincipal(base, auth.FromContext(r.Context())))
	wc := &wsConn{s: s, c: c, ctx: ctx, stop: stop, out: make(chan []byte, wsOutQueue), subs: map[string]*feed.Subscription{}}
	wc.wg.Add(2)
	go wc.writeLoop()
	go wc.pingLoop()
	wc.readLoop()
	stop()
	wc.mu.Lock()
	for id, sub := range wc.subs {
		_ = sub.Close()
		delete(wc.subs, id)
	}
	wc.mu.Unlock()
	wc.wg.Wait()
	_ = c.Close(websocket.StatusNormalClosure, "")
}

func (wc *wsConn) readLoop() {
	for {
		typ, data, err := wc.c.Read(wc.ctx)
		if err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) && ce.Code == websocket.StatusMessageTooBig {
				wc.s.log.Debug("websocket: message too big", "err", err)
			}
			return
		}
		if typ != websocket.MessageText {
			wc.sendError("", "", invalidArg("message", "messages are JSON text"))
			continue
		}
		var in wsIn
		if err := decodeObject(data, &in, "", -1); err != nil {
			wc.sendError("", "", err)
			continue
		}
		wc.handle(&in)
	}
}

func (wc *wsConn) handle(in *wsIn) {
	switch in.Type {
	case "subscribe":
		wc.subscribe(in)
	case "unsubscribe":
		wc.mu.Lock()
		sub, ok := wc.subs[in.ID]
		delete(wc.subs, in.ID)
		wc.mu.Unlock()
		if !ok {
			wc.sendError("", in.ID, invalidArg("id", "no subscription %q on this socket", in.ID))
			return
		}
		_ = sub.Close()
	case "put", "patch", "delete":
		wc.write(in)
	case "":
		wc.sendError(in.RequestID, in.ID, invalidArg("type", "type is required: subscribe, unsubscribe, put, patch or delete"))
	default:
		wc.sendError(in.RequestID, in.ID, invalidArg("type", "unknown message type %q: use subscribe, unsubscribe, put, patch or delete", in.Type))
	}
}

func (wc *wsConn) subscribe(in *wsIn) {
	if in.ID == "" {
		wc.sendError("", "", invalidArg("id", "a subscribe message needs an id"))
		return
	}
	var f wsFilter
	if in.Filter != nil {
		f = *in.Filter
	}
	filter, err := feed.NewFilter(f.AgentID, f.Tier, f.Key, f.ChangeType)
	if err != nil {
		wc.sendError("", in.ID, invalidArg("filter", "%s", unwrapInvalid(err)))
		return
	}
	req := feed.SubscribeRequest{Filter: filter, FromRevision: feed.FromNow}
	if in.FromRevision != nil {
		if *in.FromRevision < 0 {
			wc.sendError("", in.ID, invalidArg("from_revision", "from_revision must be an integer >= 0"))
			return
		}
		req.FromRevision = *in.FromRevision
	}
	if req.OnCompacted, err = compactedPolicy(in.OnCompacted); err != nil {
		wc.sendError("", in.ID, err)
		return
	}
	wc.mu.Lock()
	_, dup := wc.subs[in.ID]
	n := len(wc.subs)
	wc.mu.Unlock()
	switch {
	case dup:
		wc.sendError("", in.ID, invalidArg("id", "subscription %q already exists on this socket", in.ID))
		return
	case n >= MaxSubscriptionsPerSocket:
		wc.sendError("", in.ID, invalidArg("id", "a socket holds at most %d subscriptions", MaxSubscriptionsPerSocket))
		return
	}
	sub, err := wc.s.m.Subscribe(wc.ctx, req)
	if err != nil {
		wc.sendError("", in.ID, err)
		return
	}
	wc.mu.Lock()
	wc.subs[in.ID] = sub
	wc.mu.Unlock()
	wc.wg.Add(1)
	go wc.pump(in.ID, sub)
}

// pump forwards one subscription's deliveries, in order.
func (wc *wsConn) pump(id string, sub *feed.Subscription) {
	defer wc.wg.Done()
	var batch []feed.Delivery
	for {
		var err error
		batch, err = sub.NextBatch(wc.ctx, batch[:0])
		if err != nil {
			wc.mu.Lock()
			mine := wc.subs[id] == sub
			if mine {
				delete(wc.subs, id)
			}
			wc.mu.Unlock()
			if mine && wc.ctx.Err() == nil && !errors.Is(err, feed.ErrClosed) {
				wc.sendError("", id, err)
			}
			return
		}
		for i := range batch {
			d := &batch[i]
			m := wsOut{Type: "event", Subscription: id}
			if d.Kind == feed.KindEvent {
				b, err := wc.s.eventWire.encode(d.Event)
				if err != nil {
					wc.sendError("", id, err)
					return
				}
				m.Event = b
			} else {
				m.Type, m.Snapshot = "snapshot", snapshotOut(d)
			}
			if !wc.send(&m) {
				return
			}
		}
	}
}

// write applies a put, patch or delete and answers its result.
func (wc *wsConn) write(in *wsIn) {
	ctx := wc.ctx
	ec := &errContext{key: in.Key, local: in.Value, expected: in.ExpectedVersion}
	if err := nonNegative(in.ExpectedVersion, "expected_version", -1); err != nil {
		wc.sendError(in.RequestID, "", err)
		return
	}
	switch in.Type {
	case "put":
		ttl, err := ttlFrom(in.TTLSeconds, "ttl_seconds", -1)
		if err != nil {
			wc.sendError(in.RequestID, "", err)
			return
		}
		res, err := wc.s.m.Put(ctx, state.PutRequest{
			AgentID: in.AgentID, Tier: in.Tier, Key: in.Key, Value: in.Value,
			ExpectedVersion: in.ExpectedVersion, TTL: ttl, ChangeSummary: in.ChangeSummary,
			Metadata: nullToNil(in.Metadata), Strategy: in.Strategy, LockID: in.LockID,
		})
		if err != nil {
			wc.sendErr(in.RequestID, "", err, ec)
			return
		}
		out := entryOut(res.Entry, true)
		if res.Conflict != nil {
			out.Conflict = conflictDetails(res.Conflict, ec)
		}
		wc.send(&wsOut{Type: "result", RequestID: in.RequestID, Entry: out})
	case "patch":
		res, err := wc.s.m.Patch(ctx, state.PatchRequest{
			AgentID: in.AgentID, Tier: in.Tier, Key: in.Key, JSONPatch: in.JSONPatch, MergePatch: in.MergePatch,
			ExpectedVersion: in.ExpectedVersion, ChangeSummary: in.ChangeSummary,
			Metadata: nullToNil(in.Metadata), LockID: in.LockID,
		})
		if err != nil {
			ec.local = nil
			wc.sendErr(in.RequestID, "", err, ec)
			return
		}
		wc.send(&wsOut{Type: "result", RequestID: in.RequestID, Entry: entryOut(res.Entry, true)})
	case "delete":
		res, err := wc.s.m.Delete(ctx, state.DeleteRequest{
			AgentID: in.AgentID, Tier: in.Tier, Key: in.Key,
			ExpectedVersion: in.ExpectedVersion, ChangeSummary: in.ChangeSummary, LockID: in.LockID,
		})
		if err != nil {
			ec.local = nil
			wc.sendErr(in.RequestID, "", err, ec)
			return
		}
		wc.send(&wsOut{Type: "result", RequestID: in.RequestID, Version: res.Version, Revision: res.Revision})
	}
}

func (wc *wsConn) sendError(requestID, subscription string, err error) {
	wc.sendErr(requestID, subscription, err, nil)
}

// sendErr answers an error message through the one error table; ec gives
// conflict details for writes.
func (wc *wsConn) sendErr(requestID, subscription string, err error, ec *errContext) {
	ae := toAPIError(err, ec)
	if ae.Status >= 500 {
		wc.s.log.Error("websocket: internal error", "err", err)
	}
	d := ae.Details
	if d == nil {
		d = map[string]any{}
	}
	wc.send(&wsOut{Type: "error", RequestID: requestID, Subscription: subscription,
		Error: &errorJSON{Code: ae.Code, Message: ae.Message, Details: d}})
}

// send queues a message; false when the socket is closing.
func (wc *wsConn) send(m *wsOut) bool {
	b, err := json.Marshal(m)
	if err != nil {
		wc.s.log.Error("websocket: encoding a message", "err", err)
		return true
	}
	select {
	case wc.out <- b:
		return true
	case <-wc.ctx.Done():
		return false
	}
}

func (wc *wsConn) writeLoop() {
	defer wc.wg.Done()
	for {
		select {
		case <-wc.ctx.Done():
			return
		case b := <-wc.out:
			wctx, cancel := context.WithTimeout(wc.ctx, wsWriteTimeout)
			err := wc.c.Write(wctx, websocket.MessageText, b)
			cancel()
			if err != nil {
				wc.stop()
				return
			}
		}
	}
}

func (wc *wsConn) pingLoop() {
	defer wc.wg.Done()
	t := time.NewTicker(wsPingInterval)
	defer t.Stop()
	for {
		select {
		case <-wc.ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(wc.ctx, wsPingTimeout)
		err := wc.c.Ping(pctx)
		cancel()
		if err != nil {
			wc.s.log.Debug("websocket: peer did not answer a ping", "err", fmt.Sprint(err))
			wc.stop()
			return
		}
	}
}
