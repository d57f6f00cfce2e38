package llm

import "errors"

var (
	// ErrArchitecture: the file's architecture is not one the engine runs.
	ErrArchitecture = errors.New("llm: unsupported architecture")
	// ErrModel: a tensor is missing, has the wrong shape or type, or a
	// hyperparameter is missing or inconsistent.
	ErrModel = errors.New("llm: malformed model")
	// ErrContext: the tokens do not fit the model's context (or the cache's
	// budget); nothing was appended.
	ErrContext = errors.New("llm: context exceeded")
	// ErrToken: a token id outside the vocabulary.
	ErrToken = errors.New("llm: token out of range")
	// ErrArgument: a bad argument from the caller (empty input, wrong slice
	// length, an invalid sampling parameter).
	ErrArgument = errors.New("llm: bad argument")
)
