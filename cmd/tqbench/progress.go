package main

import (
	"io"
	"os"

	"github.com/schollz/progressbar/v3"
)

// progress is a progress bar on stderr, or nothing when stderr is not a
// terminal or the user asked for quiet.
type progress struct{ bar *progressbar.ProgressBar }

func newProgress(stderr io.Writer, total int, what string, quiet bool) *progress {
	f, ok := stderr.(*os.File)
	if quiet || !ok || total <= 0 {
		return &progress{}
	}
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return &progress{}
	}
	return &progress{bar: progressbar.NewOptions(total,
		progressbar.OptionSetWriter(f),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetWidth(30),
	)}
}

func (p *progress) describe(s string) {
	if p.bar != nil {
		p.bar.Describe(s)
	}
}

func (p *progress) add(n int) {
	if p.bar != nil {
		_ = p.bar.Add(n)
	}
}

func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}
