package server

import (
	"testing"
	"time"
)

func TestStreamEndpoints(t *testing.T) {
	e := newEnv(t)
	// Append under expected versions; next_version is the last event's version.
	d := e.do("POST", "/v1/streams/order-1/events", `{"events":[{"event_type":"created","event_data":{"id":1}},{"event_type":"priced","event_data":{"p":3}}],"expected_version":-1}`).want(t, 200)
	if d["next_version"].(interface{ String() string }).String() != "1" {
		t.Fatalf("next_version %v", d["next_version"])
	}
	det := e.do("POST", "/v1/streams/order-1/events", `{"events":[{"event_type":"x","event_data":1}],"expected_version":-1}`).wantError(t, 409, CodeWrongExpectedVersion)
	if det["current_version"].(interface{ String() string }).String() != "1" {
		t.Fatalf("current_version %v", det)
	}
	e.do("POST", "/v1/streams/order-1/events", `{"events":[{"event_type":"paid","event_data":{"ok":true}}],"expected_version":1}`).want(t, 200)
	e.do("POST", "/v1/streams/order-2/events", `{"events":[{"event_type":"created","event_data":{}}],"expected_version":null}`).want(t, 200)

	got := e.do("GET", "/v1/streams/order-1/events?from_version=1&max_count=1", "").want(t, 200)
	evs := got["events"].([]any)
	if len(evs) != 1 || evs[0].(map[string]any)["event_type"] != "priced" {
		t.Fatalf("read %v", got)
	}
	for _, f := range []string{"event_id", "event_type", "event_data", "version", "timestamp", "metadata"} {
		if _, ok := evs[0].(map[string]any)[f]; !ok {
			t.Fatalf("event lacks %s: %v", f, evs[0])
		}
	}
	e.do("GET", "/v1/streams/nope/events", "").wantError(t, 404, CodeNotFound)

	// Bad input: 4xx with a code, nothing appended.
	for _, body := range []string{`{"events":[]}`, `{"events":[{"event_data":1}]}`, `{"events":[{"event_type":"x"}]}`, `{"events":[{"event_type":"x","event_data":1}],"expected_version":-2}`, `{"events":[{"event_type":"x","event_data":1}],"expected_version":"1"}`, `{"evnts":[]}`} {
		e.do("POST", "/v1/streams/order-1/events", body).wantError(t, 400, CodeInvalidArgument)
	}
	e.do("POST", "/v1/streams/bad%20id/events", `{"events":[{"event_type":"x","event_data":1}]}`).wantError(t, 400, CodeInvalidArgument)
	e.do("GET", "/v1/streams/order-1/events?max_count=5000", "").wantError(t, 400, CodeInvalidArgument)

	// Snapshots.
	e.do("GET", "/v1/streams/order-1/snapshot", "").wantError(t, 404, CodeNotFound)
	e.do("PUT", "/v1/streams/order-1/snapshot", `{"version":2,"state":{"status":"paid"}}`).want(t, 200)
	snap := e.do("GET", "/v1/streams/order-1/snapshot", "").want(t, 200)
	if snap["state"].(map[string]any)["status"] != "paid" {
		t.Fatalf("snapshot %v", snap)
	}
	e.do("PUT", "/v1/streams/order-1/snapshot", `{"state":{}}`).wantError(t, 400, CodeInvalidArgument)

	// Catch-up subscription to every stream with a prefix: stored appends in
	// order with their position, then a live one.
	s := e.openSSE("/v1/streams/events?prefix=order-")
	var streams []string
	for i := 0; i < 4; i++ {
		m := s.next(5 * time.Second)
		streams = append(streams, m.data["stream_id"].(string))
	}
	if streams[0] != "order-1" || streams[3] != "order-2" {
		t.Fatalf("all-streams order %v", streams)
	}
	e.do("POST", "/v1/streams/order-3/events", `{"events":[{"event_type":"created","event_data":{}}]}`).want(t, 200)
	if m := s.next(5 * time.Second); m.data["stream_id"] != "order-3" || m.id == "" {
		t.Fatalf("live append %+v", m)
	}
	// One stream from a version.
	one := e.openSSE("/v1/streams/order-1/subscribe?from_version=2")
	if m := one.next(5 * time.Second); m.data["event_type"] != "paid" || m.id != "2" {
		t.Fatalf("stream subscription %+v", m)
	}
}

func TestSSEHeartbeat(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.HeartbeatInterval = 50 * time.Millisecond })
	s := e.openSSE("/v1/events")
	deadline := time.Now().Add(5 * time.Second)
	for s.sc.Scan() {
		if s.sc.Text() == ": ping" {
			return
		}
		if time.Now().After(deadline) {
			break
		}
	}
	t.Fatal("no heartbeat comment on an idle stream")
}
