package serve

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

var (
	fuzzOnce   sync.Once
	fuzzServer *Server
)

// FuzzRequestBody posts arbitrary bodies to both generation endpoints: the
// answer is 200 with a complete body or a 4xx with a JSON error, never a
// 5xx or a panic.
func FuzzRequestBody(f *testing.F) {
	for _, s := range []string{
		`{"prompt":"In the beginning","max_tokens":3,"temperature":0}`,
		`{"prompt":["And"],"max_tokens":2,"stream":true,"stop":["the"]}`,
		`{"prompt":"a","max_tokens":-1}`,
		`{"prompt":"a","top_p":2}`,
		`{"prompt":"a","stop":7}`,
		`{"prompt":"God","options":{"num_predict":2,"seed":3,"stop":"\n"}}`,
		`{"prompt":"God","stream":false,"options":{"num_predict":1}}`,
		`{`, `null`, `[]`, `{"prompt":""}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		fuzzOnce.Do(func() {
			var err error
			if fuzzServer, err = New(Config{Model: model(t), KVBudget: 64 << 20, MaxQueue: 1 << 20}); err != nil {
				t.Fatal(err)
			}
		})
		var lim struct {
			MaxTokens json.RawMessage `json:"max_tokens"`
			Options   struct {
				NumPredict json.RawMessage `json:"num_predict"`
			} `json:"options"`
		}
		parsed := json.Unmarshal([]byte(body), &lim) == nil
		small := func(n json.RawMessage) bool { // generation bounded to a few tokens
			var v int
			return json.Unmarshal(n, &v) == nil && v <= 8 && v > -1
		}
		for _, path := range []string{"/v1/completions", "/api/generate"} {
			if parsed && !small(map[bool]json.RawMessage{true: lim.MaxTokens, false: lim.Options.NumPredict}[path == "/v1/completions"]) {
				continue // a well-formed request that could generate up to the context: too slow to fuzz
			}
			rec := httptest.NewRecorder()
			fuzzServer.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, strings.NewReader(body)))
			b := rec.Body.String()
			switch code := rec.Code; {
			case code >= 500:
				t.Fatalf("%s %q: status %d %s", path, body, code, b)
			case code != http.StatusOK:
				if !json.Valid([]byte(b)) {
					t.Fatalf("%s %q: status %d with a body that is not JSON: %q", path, body, code, b)
				}
			case strings.HasPrefix(rec.Header().Get("Content-Type"), "text/event-stream"):
				if !strings.HasSuffix(b, "data: [DONE]\n\n") {
					t.Fatalf("%s %q: a stream without [DONE]: %q", path, body, b)
				}
			default:
				for _, line := range strings.Split(strings.TrimSpace(b), "\n") {
					if !json.Valid([]byte(line)) {
						t.Fatalf("%s %q: line %q is not JSON", path, body, line)
					}
				}
			}
		}
	})
}
