package serve

import "errors"

var (
	// ErrConfig: a bad server configuration (no model, no tokenizer, an
	// unknown preset, a budget that cannot hold one token).
	ErrConfig = errors.New("serve: bad configuration")
	// ErrBadRequest: a request the server cannot run as asked (malformed
	// JSON, a bad sampling parameter, a prompt over the context or the
	// budget); HTTP 400.
	ErrBadRequest = errors.New("serve: bad request")
	// ErrQueueFull: the admission queue is full; HTTP 429.
	ErrQueueFull = errors.New("serve: queue full")
	// ErrDraining: the server is shutting down; HTTP 503.
	ErrDraining = errors.New("serve: shutting down")
	// ErrUnknownModel: the request names another model; HTTP 404.
	ErrUnknownModel = errors.New("serve: unknown model")
)
