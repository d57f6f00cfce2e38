package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/llm"
)

// maxBody bounds a request body.
const maxBody = 1 << 20

func (s *Server) routes() {
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST /v1/completions", s.handleCompletions)
	s.mux.HandleFunc("POST /api/generate", s.handleGenerate)
	s.mux.HandleFunc("GET /v1/models", s.handleModels)
	s.mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_ = s.writeMetrics(w)
	})
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if s.Draining() {
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
}

// genParams is a generation request in either API's terms.
type genParams struct {
	model       string
	prompt      string
	maxTokens   int // < 0: up to the context
	temperature float64
	topP        float64
	topK        int
	seed        *uint64
	stops       []string
	ignoreEOS   bool
	kvPreset    string // a preset the client expects ("": any)
}

// newJob tokenizes and validates p; errors wrap ErrBadRequest or
// ErrUnknownModel.
func (s *Server) newJob(r *http.Request, p genParams) (*job, error) {
	if p.model != "" && p.model != s.name {
		return nil, fmt.Errorf("%w: %q (this server runs %q)", ErrUnknownModel, p.model, s.name)
	}
	if p.prompt == "" {
		return nil, fmt.Errorf("%w: empty prompt", ErrBadRequest)
	}
	if p.kvPreset != "" && p.kvPreset != s.cfg.Preset {
		if !slices.Contains(kvcache.AllPresetNames(), p.kvPreset) {
			return nil, fmt.Errorf("%w: unknown kv_preset %q (have %s)", ErrBadRequest, p.kvPreset,
				strings.Join(kvcache.AllPresetNames(), ", "))
		}
		return nil, fmt.Errorf("%w: kv_preset %q: this server's cache is %q (one pool, one preset; start another with --preset)",
			ErrBadRequest, p.kvPreset, s.cfg.Preset)
	}
	if len(p.stops) > 16 {
		return nil, fmt.Errorf("%w: %d stop strings (at most 16)", ErrBadRequest, len(p.stops))
	}
	seed := s.seeds.Add(0x9e3779b97f4a7c15)
	if p.seed != nil {
		seed = *p.seed
	}
	if math.IsNaN(p.temperature) || math.IsNaN(p.topP) {
		return nil, fmt.Errorf("%w: temperature %g, top_p %g", ErrBadRequest, p.temperature, p.topP)
	}
	sampler, err := llm.NewSampler(llm.SampleOptions{Temperature: float32(p.temperature), TopP: float32(p.topP), TopK: p.topK, Seed: seed})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	prompt := s.model.Tokenizer.Encode(p.prompt, true, false)
	ctxLen := s.model.Config.Context
	if len(prompt) >= ctxLen {
		return nil, fmt.Errorf("%w: the prompt is %d tokens; the context is %d", ErrBadRequest, len(prompt), ctxLen)
	}
	n := p.maxTokens
	if n < 0 || len(prompt)+n > ctxLen {
		n = ctxLen - len(prompt) // stops with "length" at the context
	}
	j := &job{ctx: r.Context(), prompt: prompt, maxTokens: n, sampler: sampler, stops: p.stops, ignoreEOS: p.ignoreEOS}
	need, err := s.plan(len(prompt))
	if err != nil {
		return nil, err
	}
	if need > s.budget {
		return nil, fmt.Errorf("%w: the prompt's %d tokens need %d bytes of KV cache; the budget is %d", ErrBadRequest, len(prompt), need, s.budget)
	}
	if j.charge, err = s.plan(len(prompt) + n - 1); err != nil {
		return nil, err
	}
	if j.charge > s.budget { // runs alone and ends with "length" when the cache is full
		j.alone = true
	}
	return j, nil
}

// status maps an error to its HTTP status.
func status(err error) int {
	switch {
	case errors.Is(err, ErrBadRequest):
		return http.StatusBadRequest
	case errors.Is(err, ErrUnknownModel):
		return http.StatusNotFound
	case errors.Is(err, ErrQueueFull):
		return http.StatusTooManyRequests
	case errors.Is(err, ErrDraining):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// refuse writes an error response; errBody shapes the JSON.
func (s *Server) refuse(w http.ResponseWriter, err error, errBody func(code int, msg string) any) {
	code := status(err)
	if code == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(s.cfg.RetryAfter.Seconds()))))
	}
	writeJSON(w, code, errBody(code, err.Error()))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// decodeBody reads a JSON body into v.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: malformed JSON body: %v", ErrBadRequest, err)
	}
	return nil
}

// stringOrList is a JSON string or array of strings.
type stringOrList []string

func (l *stringOrList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*l = stringOrList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("want a string or an array of strings")
	}
	*l = many
	return nil
}

// run submits j and calls onText for its text and onDone once at the end;
// it returns early (false) if the client goes away. Errors before the
// job is queued come back as err.
func (s *Server) run(j *job, onText func(string), onDone func(event)) (err error) {
	if err := s.submit(j); err != nil {
		return err
	}
	for {
		select {
		case ev := <-j.events:
			if ev.done {
				onDone(ev)
				return nil
			}
			onText(ev.text)
		case <-j.ctx.Done():
			s.signal() // the scheduler drops the job at its next step
			return nil
		}
	}
}

// openAIError is OpenAI's error body.
func openAIError(code int, msg string) any {
	typ := "invalid_request_error"
	switch {
	case code == http.StatusTooManyRequests:
		typ = "rate_limit_exceeded"
	case code >= 500:
		typ = "server_error"
	}
	return map[string]any{"error": map[string]any{"message": msg, "type": typ, "code": code}}
}

// ollamaError is ollama's error body.
func ollamaError(_ int, msg string) any { return map[string]string{"error": msg} }

type completionRequest struct {
	Model       string       `json:"model"`
	Prompt      stringOrList `json:"prompt"`
	MaxTokens   *int         `json:"max_tokens"`
	Temperature *float64     `json:"temperature"`
	TopP        *float64     `json:"top_p"`
	TopK        int          `json:"top_k"`
	Seed        *uint64      `json:"seed"`
	Stop        stringOrList `json:"stop"`
	Stream      bool         `json:"stream"`
	// IgnoreEOS (vLLM's extension) generates past end-of-generation
	// tokens, for load tests that need every request at max_tokens.
	IgnoreEOS bool `json:"ignore_eos"`
	// KVPreset, when set, must name this server's cache preset.
	KVPreset string `json:"kv_preset"`
}

type completionChoice struct {
	Text         string  `json:"text"`
	Index        int     `json:"index"`
	Logprobs     any     `json:"logprobs"`
	FinishReason *string `json:"finish_reason"`
}

type completionUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
	CachedTokens     int `json:"cached_tokens"` // prompt tokens taken from the prefix cache
}

type completionResponse struct {
	ID      string             `json:"id"`
	Object  string             `json:"object"`
	Created int64              `json:"created"`
	Model   string             `json:"model"`
	Choices []completionChoice `json:"choices"`
	Usage   *completionUsage   `json:"usage,omitempty"`
}

func (s *Server) handleCompletions(w http.ResponseWriter, r *http.Request) {
	var req completionRequest
	if err := decodeBody(w, r, &req); err != nil {
		s.refuse(w, err, openAIError)
		return
	}
	p := genParams{model: req.Model, maxTokens: 16, temperature: 1, topP: 1, topK: req.TopK, seed: req.Seed, stops: req.Stop, ignoreEOS: req.IgnoreEOS, kvPreset: req.KVPreset}
	switch {
	case len(req.Prompt) != 1:
		s.refuse(w, fmt.Errorf("%w: prompt must be one string (got %d)", ErrBadRequest, len(req.Prompt)), openAIError)
		return
	case req.MaxTokens != nil && *req.MaxTokens < 1:
		s.refuse(w, fmt.Errorf("%w: max_tokens %d must be at least 1", ErrBadRequest, *req.MaxTokens), openAIError)
		return
	}
	p.prompt = req.Prompt[0]
	if req.MaxTokens != nil {
		p.maxTokens = *req.MaxTokens
	}
	if req.Temperature != nil {
		p.temperature = *req.Temperature
	}
	if req.TopP != nil {
		p.topP = *req.TopP
	}
	j, err := s.newJob(r, p)
	if err != nil {
		s.refuse(w, err, openAIError)
		return
	}
	resp := completionResponse{ID: fmt.Sprintf("cmpl-%x", s.seeds.Add(1)), Object: "text_completion",
		Created: time.Now().Unix(), Model: s.name}
	usage := func(ev event) *completionUsage {
		return &completionUsage{ev.promptTokens, ev.completionTokens, ev.promptTokens + ev.completionTokens, ev.prefixTokens}
	}
	if !req.Stream {
		var text []byte
		err = s.run(j, func(t string) { text = append(text, t...) }, func(ev event) {
			if ev.err != nil {
				s.refuse(w, ev.err, openAIError)
				return
			}
			resp.Choices = []completionChoice{{Text: string(text), FinishReason: &ev.finish}}
			resp.Usage = usage(ev)
			writeJSON(w, http.StatusOK, resp)
		})
		if err != nil {
			s.refuse(w, err, openAIError)
		}
		return
	}
	flusher, _ := w.(http.Flusher)
	started := false
	start := func() {
		if !started {
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Cache-Control", "no-cache")
			w.WriteHeader(http.StatusOK)
			started = true
		}
	}
	send := func(v any) {
		start()
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "data: %s\n\n", b)
		if flusher != nil {
			flusher.Flush()
		}
	}
	err = s.run(j, func(t string) {
		resp.Choices = []completionChoice{{Text: t}}
		send(resp)
	}, func(ev event) {
		if ev.err != nil {
			if !started {
				s.refuse(w, ev.err, openAIError)
				return
			}
			send(openAIError(http.StatusInternalServerError, ev.err.Error()))
		} else {
			resp.Choices = []completionChoice{{FinishReason: &ev.finish}}
			resp.Usage = usage(ev)
			send(resp)
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
		if flusher != nil {
			flusher.Flush()
		}
	})
	if err != nil {
		s.refuse(w, err, openAIError)
	}
}

type generateRequest struct {
	Model    string `json:"model"`
	Prompt   string `json:"prompt"`
	Stream   *bool  `json:"stream"`
	KVPreset string `json:"kv_preset"`
	Options  struct {
		Temperature *float64     `json:"temperature"`
		TopP        *float64     `json:"top_p"`
		TopK        int          `json:"top_k"`
		Seed        *uint64      `json:"seed"`
		NumPredict  *int         `json:"num_predict"`
		Stop        stringOrList `json:"stop"`
	} `json:"options"`
}

type generateResponse struct {
	Model              string `json:"model"`
	CreatedAt          string `json:"created_at"`
	Response           string `json:"response"`
	Done               bool   `json:"done"`
	DoneReason         string `json:"done_reason,omitempty"`
	PromptEvalCount    int    `json:"prompt_eval_count,omitempty"`
	EvalCount          int    `json:"eval_count,omitempty"`
	TotalDuration      int64  `json:"total_duration,omitempty"`
	CachedPromptTokens int    `json:"cached_prompt_tokens,omitempty"`
}

func (s *Server) handleGenerate(w http.ResponseWriter, r *http.Request) {
	begin := time.Now()
	var req generateRequest
	if err := decodeBody(w, r, &req); err != nil {
		s.refuse(w, err, ollamaError)
		return
	}
	o := req.Options
	p := genParams{model: req.Model, prompt: req.Prompt, maxTokens: 128, temperature: 0.8, topP: 0.9, topK: o.TopK, seed: o.Seed, stops: o.Stop, kvPreset: req.KVPreset}
	if o.NumPredict != nil {
		if *o.NumPredict == 0 {
			s.refuse(w, fmt.Errorf("%w: num_predict 0", ErrBadRequest), ollamaError)
			return
		}
		p.maxTokens = *o.NumPredict // negative: up to the context, as ollama's -1
	}
	if o.Temperature != nil {
		p.temperature = *o.Temperature
	}
	if o.TopP != nil {
		p.topP = *o.TopP
	}
	j, err := s.newJob(r, p)
	if err != nil {
		s.refuse(w, err, ollamaError)
		return
	}
	now := func() string { return time.Now().UTC().Format(time.RFC3339Nano) }
	final := func(ev event, text string) generateResponse {
		return generateResponse{Model: s.name, CreatedAt: now(), Response: text, Done: true, DoneReason: ev.finish,
			PromptEvalCount: ev.promptTokens, EvalCount: ev.completionTokens, TotalDuration: time.Since(begin).Nanoseconds(),
			CachedPromptTokens: ev.prefixTokens}
	}
	if req.Stream != nil && !*req.Stream {
		var text []byte
		err = s.run(j, func(t string) { text = append(text, t...) }, func(ev event) {
			if ev.err != nil {
				s.refuse(w, ev.err, ollamaError)
				return
			}
			writeJSON(w, http.StatusOK, final(ev, string(text)))
		})
		if err != nil {
			s.refuse(w, err, ollamaError)
		}
		return
	}
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	started := false
	send := func(v any) {
		if !started {
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.WriteHeader(http.StatusOK)
			started = true
		}
		_ = enc.Encode(v)
		if flusher != nil {
			flusher.Flush()
		}
	}
	err = s.run(j, func(t string) {
		send(generateResponse{Model: s.name, CreatedAt: now(), Response: t})
	}, func(ev event) {
		switch {
		case ev.err != nil && !started:
			s.refuse(w, ev.err, ollamaError)
		case ev.err != nil:
			send(ollamaError(0, ev.err.Error()))
		default:
			send(final(ev, ""))
		}
	})
	if err != nil {
		s.refuse(w, err, ollamaError)
	}
}

func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": []map[string]any{{
		"id": s.name, "object": "model", "created": s.started.Unix(), "owned_by": "tqserve",
		"context_length": s.model.Config.Context, "kv_preset": s.cfg.Preset, "kv_budget_bytes": s.budget,
	}}})
}
