package ann

import (
	"cmp"
	"slices"
)

// Result is one neighbour: its id (the order in which it was added) and its
// distance to the query (lower is closer).
type Result struct {
	ID       int
	Distance float32
}

// worse orders results: larger distance first, then larger id, so that ties
// resolve the same way in every scan order.
func worse(a, b Result) bool {
	if a.Distance != b.Distance {
		return a.Distance > b.Distance
	}
	return a.ID > b.ID
}

// topK keeps the k best results in a max-heap on worse, so the worst kept
// result is at the root and a candidate costs one comparison when it loses.
type topK struct {
	k int
	h []Result
}

func newTopK(k int) *topK { return &topK{k: k, h: make([]Result, 0, k)} }

func (t *topK) push(r Result) {
	if len(t.h) < t.k {
		t.h = append(t.h, r)
		for i := len(t.h) - 1; i > 0; {
			p := (i - 1) / 2
			if !worse(t.h[i], t.h[p]) {
				break
			}
			t.h[i], t.h[p] = t.h[p], t.h[i]
			i = p
		}
		return
	}
	if !worse(t.h[0], r) {
		return
	}
	t.h[0] = r
	for i, n := 0, len(t.h); ; {
		l, m := 2*i+1, i
		if l < n && worse(t.h[l], t.h[m]) {
			m = l
		}
		if l+1 < n && worse(t.h[l+1], t.h[m]) {
			m = l + 1
		}
		if m == i {
			return
		}
		t.h[i], t.h[m] = t.h[m], t.h[i]
		i = m
	}
}

// offer pushes the result (id, d) if it beats the worst kept one.
func (t *topK) offer(d float32, id int) {
	if len(t.h) == t.k && !(d < t.h[0].Distance || d == t.h[0].Distance && id < t.h[0].ID) {
		return
	}
	t.push(Result{ID: id, Distance: d})
}

// pushDistances offers the distances of the ids first, first+1, ….
func (t *topK) pushDistances(dist []float32, first int) {
	for i, d := range dist {
		t.offer(d, first+i)
	}
}

// sorted returns the kept results, best first.
func (t *topK) sorted() []Result {
	out := slices.Clone(t.h)
	sortResults(out)
	return out
}

func sortResults(r []Result) {
	slices.SortFunc(r, func(a, b Result) int {
		if c := cmp.Compare(a.Distance, b.Distance); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
}
