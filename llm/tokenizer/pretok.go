package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// Pre-tokenizers cut a raw-text fragment into words before byte-level BPE.
// llama.cpp expresses each as a list of regexes applied in turn, every regex
// splitting the pieces the previous one left (matches and the gaps between
// them both become pieces). The regexes use lookahead (\s+(?!\S)), which Go's
// regexp lacks, so each stage is written by hand here; stage semantics are
// those of a backtracking regex: at each position the first alternative that
// matches wins, not the longest.

// span is a half-open range of rune indices.
type span struct{ lo, hi int }

// stage splits rs[lo:hi] and appends the pieces to out.
type stage func(rs []rune, lo, hi int, out []span) []span

type preTokenizer struct {
	stages       []stage
	ignoreMerges bool // llama3: emit a word whole when it is a token
	cleanSpaces  bool // clean_up_tokenization_spaces on decode
}

var (
	preGPT2    = []stage{splitGPT2}
	preLlama3  = []stage{splitLlama3(3)}
	preQwen2   = []stage{splitLlama3(1)}
	preDigits  = []stage{splitEach(isNumber), splitGPT2}
	preDefault = []stage{
		splitRuns(func(r rune) bool { return unicode.IsPunct(r) || isOneOf(r, "$+<=>^~|") }),
		splitGPT2,
		splitRuns(isNumber),
		splitASCIIDigits3,
	}
	preFalcon = []stage{
		splitRuns(func(r rune) bool { return unicode.IsPunct(r) || isOneOf(r, "$+<=>^~|`") }),
		splitGPT2,
		splitASCIIDigits3,
	}
	preBloom  = []stage{splitBloom}
	preViking = []stage{splitBloom, splitEach(isNumber)}
)

// preTokenizers maps tokenizer.ggml.pre to its pre-tokenizer, grouped as in
// llama.cpp's llama_vocab::impl::load and llm_tokenizer_bpe. cleanSpaces is
// true unless llama.cpp turns it off for that name.
var preTokenizers = map[string]preTokenizer{
	// No pre key, or "default": llama.cpp's LLAMA_VOCAB_PRE_TYPE_DEFAULT,
	// a four-regex chain (punctuation runs, GPT-2, digit runs, ASCII digit
	// triples); it is not the llama3 splitter.
	"":        {stages: preDefault, cleanSpaces: true},
	"default": {stages: preDefault, cleanSpaces: true},

	"llama3":    {stages: preLlama3, ignoreMerges: true, cleanSpaces: true},
	"llama-v3":  {stages: preLlama3, ignoreMerges: true, cleanSpaces: true},
	"llama-bpe": {stages: preLlama3, ignoreMerges: true, cleanSpaces: true},
	"falcon3":   {stages: preLlama3, ignoreMerges: true, cleanSpaces: true},
	// names newer llama.cpp versions map to the same llama3 type
	"falcon-h1":    {stages: preLlama3, ignoreMerges: true, cleanSpaces: true},
	"pixtral":      {stages: preLlama3, ignoreMerges: true, cleanSpaces: true},
	"midm-2.0":     {stages: preLlama3, ignoreMerges: true, cleanSpaces: true},
	"lfm2":         {stages: preLlama3, ignoreMerges: true, cleanSpaces: true},
	"jina-v5-nano": {stages: preLlama3, ignoreMerges: true, cleanSpaces: true},
	"dbrx":         {stages: preLlama3, cleanSpaces: true},
	"smaug-bpe":    {stages: preLlama3, cleanSpaces: true},
	// chatglm-bpe also drops BOS in llama.cpp; that is the glue's business.
	"chatglm-bpe": {stages: preLlama3, cleanSpaces: true},
	"glm4":        {stages: preLlama3, cleanSpaces: true},

	"qwen2":            {stages: preQwen2},
	"deepseek-r1-qwen": {stages: preQwen2},
	"kormo":            {stages: preQwen2},
	"f2llmv2":          {stages: preQwen2},
	"stablelm2":        {stages: preQwen2, cleanSpaces: true},
	"megrez":           {stages: preQwen2, cleanSpaces: true},

	"gpt-2":        {stages: preGPT2, cleanSpaces: true},
	"phi-2":        {stages: preGPT2, cleanSpaces: true},
	"jina-es":      {stages: preGPT2, cleanSpaces: true},
	"jina-de":      {stages: preGPT2, cleanSpaces: true},
	"gigachat":     {stages: preGPT2, cleanSpaces: true},
	"jina-v1-en":   {stages: preGPT2, cleanSpaces: true},
	"jina-v2-es":   {stages: preGPT2, cleanSpaces: true},
	"jina-v2-de":   {stages: preGPT2, cleanSpaces: true},
	"jina-v2-code": {stages: preGPT2, cleanSpaces: true},
	"roberta-bpe":  {stages: preGPT2, cleanSpaces: true},
	"mpt":          {stages: preGPT2, cleanSpaces: true},
	"olmo":         {stages: preGPT2, cleanSpaces: true},
	"jais":         {stages: preGPT2, cleanSpaces: true},
	"a.x-4.0":      {stages: preGPT2, cleanSpaces: true},
	"mellum":       {stages: preGPT2, cleanSpaces: true},
	"modern-bert":  {stages: preGPT2, cleanSpaces: true},
	"exaone4":      {stages: preGPT2, cleanSpaces: true},

	// Single digits first, then GPT-2's pattern on what is left.
	"smollm":     {stages: preDigits},
	"starcoder":  {stages: preDigits, cleanSpaces: true},
	"refact":     {stages: preDigits, cleanSpaces: true},
	"command-r":  {stages: preDigits},
	"codeshell":  {stages: preDigits, cleanSpaces: true},
	"exaone":     {stages: preDigits, cleanSpaces: true},
	"minerva-7b": {stages: preDigits, cleanSpaces: true},

	"falcon":       {stages: preFalcon, cleanSpaces: true},
	"bloom":        {stages: preBloom, cleanSpaces: true},
	"gpt3-finnish": {stages: preBloom, cleanSpaces: true},
	"poro-chat":    {stages: preBloom},
	"viking":       {stages: preViking},
}

// split runs the stages over rs and returns the final pieces. bufs are two
// scratch slices reused across calls; they are stored back grown.
func (p preTokenizer) split(rs []rune, bufs *[2][]span) []span {
	cur, tmp := bufs[0][:0], bufs[1][:0]
	if len(rs) == 0 {
		return cur
	}
	cur = append(cur, span{0, len(rs)})
	for _, st := range p.stages {
		next := tmp[:0]
		for _, s := range cur {
			next = st(rs, s.lo, s.hi, next)
		}
		cur, tmp = next, cur
	}
	bufs[0], bufs[1] = cur, tmp
	return cur
}

// Character classes. llama.cpp derives them from Python's regex module:
// \s is the Unicode White_Space property (unicode.IsSpace is the same set),
// \p{L} and \p{N} the general categories. Every code point is "defined"
// there (unassigned ones are \p{C}), so there is no undefined class.
func isSpace(r rune) bool {
	if r < utf8.RuneSelf {
		return r == ' ' || (r >= '\t' && r <= '\r')
	}
	return unicode.IsSpace(r)
}

func isLetter(r rune) bool {
	if r < utf8.RuneSelf {
		return (r|0x20) >= 'a' && (r|0x20) <= 'z'
	}
	return unicode.IsLetter(r)
}

func isNumber(r rune) bool {
	if r < utf8.RuneSelf {
		return r >= '0' && r <= '9'
	}
	return unicode.IsNumber(r)
}

func isOneOf(r rune, set string) bool {
	for _, c := range set {
		if c == r {
			return true
		}
	}
	return false
}

// cursor gives class tests that are false outside [lo,hi), the way
// llama.cpp's custom splitters see text beyond the current piece.
type cursor struct {
	rs     []rune
	lo, hi int
}

func (c cursor) in(i int) bool      { return i >= c.lo && i < c.hi }
func (c cursor) at(i int) rune      { return c.rs[i] }
func (c cursor) space(i int) bool   { return c.in(i) && isSpace(c.rs[i]) }
func (c cursor) letter(i int) bool  { return c.in(i) && isLetter(c.rs[i]) }
func (c cursor) number(i int) bool  { return c.in(i) && isNumber(c.rs[i]) }
func (c cursor) newline(i int) bool { return c.in(i) && (c.rs[i] == '\r' || c.rs[i] == '\n') }

// other is [^\s\p{L}\p{N}] inside the piece.
func (c cursor) other(i int) bool {
	if !c.in(i) {
		return false
	}
	r := c.rs[i]
	return !isSpace(r) && !isLetter(r) && !isNumber(r)
}

// splitGPT2 is 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
func splitGPT2(rs []rune, lo, hi int, out []span) []span {
	c := cursor{rs, lo, hi}
	prev := lo
	emit := func(end int) {
		if end > prev {
			out = append(out, span{prev, end})
		}
		prev = end
	}
	for pos := lo; pos < hi; {
		r := rs[pos]
		if r == '\'' && pos+1 < hi {
			n := rs[pos+1]
			if n == 's' || n == 't' || n == 'm' || n == 'd' {
				pos += 2
				emit(pos)
				continue
			}
			if pos+2 < hi {
				nn := rs[pos+2]
				if (n == 'r' && nn == 'e') || (n == 'v' && nn == 'e') || (n == 'l' && nn == 'l') {
					pos += 3
					emit(pos)
					continue
				}
			}
		}
		// " ?X+": the optional space belongs to the run that follows it.
		q := pos
		if r == ' ' {
			q = pos + 1
		}
		switch {
		case c.letter(q):
			for pos = q; c.letter(pos); pos++ {
			}
			emit(pos)
			continue
		case c.number(q):
			for pos = q; c.number(pos); pos++ {
			}
			emit(pos)
			continue
		case c.other(q):
			for pos = q; c.other(pos); pos++ {
			}
			emit(pos)
			continue
		}
		ws := 0
		for c.space(pos + ws) {
			ws++
		}
		switch {
		case ws > 1 && pos+ws < hi:
			// \s+(?!\S): leave the last space to prefix the next word.
			pos += ws - 1
		case ws > 0:
			pos += ws
		default:
			pos++
		}
		emit(pos)
	}
	return out
}

// splitLlama3 is (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,k}|
// ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ with k=3 (llama3) or
// k=1 (qwen2).
func splitLlama3(maxDigits int) stage {
	return func(rs []rune, lo, hi int, out []span) []span {
		c := cursor{rs, lo, hi}
		prev := lo
		emit := func(end int) {
			if end > prev {
				out = append(out, span{prev, end})
			}
			prev = end
		}
		lower := func(r rune) rune {
			if r >= 'A' && r <= 'Z' {
				return r + ('a' - 'A')
			}
			return r
		}
		for pos := lo; pos < hi; {
			r := rs[pos]
			if r == '\'' && pos+1 < hi {
				n := lower(rs[pos+1])
				if n == 's' || n == 't' || n == 'm' || n == 'd' {
					pos += 2
					emit(pos)
					continue
				}
				if pos+2 < hi {
					nn := lower(rs[pos+2])
					if (n == 'r' && nn == 'e') || (n == 'v' && nn == 'e') || (n == 'l' && nn == 'l') {
						pos += 3
						emit(pos)
						continue
					}
				}
			}
			// [^\r\n\p{L}\p{N}]?\p{L}+
			if r != '\r' && r != '\n' && !isNumber(r) && (isLetter(r) || c.letter(pos+1)) {
				for pos++; c.letter(pos); pos++ {
				}
				emit(pos)
				continue
			}
			// \p{N}{1,k}
			if isNumber(r) {
				ini := pos
				for c.number(pos) {
					pos++
					if pos-ini >= maxDigits {
						emit(pos)
						ini = pos
					}
				}
				emit(pos)
				continue
			}
			// ?[^\s\p{L}\p{N}]+[\r\n]*
			q := pos
			if r == ' ' {
				q = pos + 1
			}
			if c.other(q) {
				for pos = q; c.other(pos); pos++ {
				}
				for c.newline(pos) {
					pos++
				}
				emit(pos)
				continue
			}
			ws, lastNL := 0, 0
			for c.space(pos + ws) {
				if c.newline(pos + ws) {
					lastNL = pos + ws + 1
				}
				ws++
			}
			switch {
			case lastNL > 0:
				// \s*[\r\n]+ ends at the last line break of the run.
				pos = lastNL
			case ws > 1 && pos+ws < hi:
				pos += ws - 1
			case ws > 0:
				pos += ws
			default:
				pos++
			}
			emit(pos)
		}
		return out
	}
}

// splitRuns is "[class]+": maximal runs of class are pieces, and so are the
// gaps between them.
func splitRuns(class func(rune) bool) stage {
	return func(rs []rune, lo, hi int, out []span) []span {
		start := lo
		for pos := lo; pos < hi; {
			if !class(rs[pos]) {
				pos++
				continue
			}
			end := pos + 1
			for end < hi && class(rs[end]) {
				end++
			}
			if pos > start {
				out = append(out, span{start, pos})
			}
			out = append(out, span{pos, end})
			start, pos = end, end
		}
		if hi > start {
			out = append(out, span{start, hi})
		}
		return out
	}
}

// splitEach is "[class]": every rune of class is its own piece.
func splitEach(class func(rune) bool) stage {
	return func(rs []rune, lo, hi int, out []span) []span {
		start := lo
		for pos := lo; pos < hi; pos++ {
			if class(rs[pos]) {
				if pos > start {
					out = append(out, span{start, pos})
				}
				out = append(out, span{pos, pos + 1})
				start = pos + 1
			}
		}
		if hi > start {
			out = append(out, span{start, hi})
		}
		return out
	}
}

// splitASCIIDigits3 is [0-9][0-9][0-9], leftmost and non-overlapping.
func splitASCIIDigits3(rs []rune, lo, hi int, out []span) []span {
	d := func(i int) bool { return rs[i] >= '0' && rs[i] <= '9' }
	start := lo
	for pos := lo; pos < hi; {
		if pos+3 <= hi && d(pos) && d(pos+1) && d(pos+2) {
			if pos > start {
				out = append(out, span{start, pos})
			}
			out = append(out, span{pos, pos + 3})
			pos += 3
			start = pos
			continue
		}
		pos++
	}
	if hi > start {
		out = append(out, span{start, hi})
	}
	return out
}

// splitBloom is " ?[^(\s|.,!?…。，、।۔،)]+" (bloom, poro, gpt3-finnish):
// the bracket is a character class, so "(", "|" and ")" are excluded too.
func splitBloom(rs []rune, lo, hi int, out []span) []span {
	word := func(i int) bool {
		if i >= hi {
			return false
		}
		r := rs[i]
		return !isSpace(r) && !isOneOf(r, "(|.,!?…。，、।۔،)")
	}
	start := lo
	for pos := lo; pos < hi; {
		q := pos
		if rs[pos] == ' ' && word(pos+1) {
			q = pos + 1
		}
		if !word(q) {
			pos++
			continue
		}
		end := q + 1
		for word(end) {
			end++
		}
		if pos > start {
			out = append(out, span{start, pos})
		}
		out = append(out, span{pos, end})
		start, pos = end, end
	}
	if hi > start {
		out = append(out, span{start, hi})
	}
	return out
}
