// Command hnsw puts TurboQuant codes inside a third-party HNSW graph
// (github.com/coder/hnsw) and compares it with the same graph on float32
// vectors: recall@10 against exact search and queries per second.
//
// The graph is built once, over exact float32 distances. Its nodes carry
// only their id (one float32 holding the id's bits); the vectors live beside
// it, either as float32 rows or as TurboQuant codes. Searching with codes
// swaps the graph's distance function for one that scores the code of the
// node against the prepared query (asymmetric: the query stays full
// precision), then optionally re-ranks the best k·R by exact distance. So
// the graph, its links and its traversal are identical; only the vector
// storage and the distance differ.
//
//	go run . -data fmnist            # from examples/hnsw
//
// It lives in its own module so the main module does not depend on the
// HNSW library.
package main

import (
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/coder/hnsw"
	"github.com/turboquant-go/tq/ann"
	"github.com/turboquant-go/tq/dataset"
)

func main() {
	data := flag.String("data", "fmnist", "dataset (package dataset): fmnist or glove100")
	nBase := flag.Int("n", 0, "base vectors (0: the standard split)")
	nQuery := flag.Int("queries", 0, "queries (0: the standard split)")
	bits := flag.Int("bits", 4, "bits per coordinate")
	method := flag.String("method", "mse-norm", "TurboQuant method")
	center := flag.Bool("center", true, "subtract the base mean before rotation")
	efs := flag.String("ef", "10,20,40,80", "EfSearch values (the graph is asked for ef results)")
	efBuild := flag.Int("efbuild", 64, "EfSearch while building")
	rerank := flag.Bool("rerank", true, "also report codes with the ef candidates re-ranked by exact distance")
	flag.Parse()
	if err := run(*data, *nBase, *nQuery, *bits, *method, *center, *efs, *efBuild, *rerank); err != nil {
		log.Fatal(err)
	}
}

const k = 10

// idVector is a node's vector in the graph: its id, bit for bit.
func idVector(id int) hnsw.Vector { return hnsw.Vector{math.Float32frombits(uint32(id))} }

func idOf(v hnsw.Vector) int { return int(math.Float32bits(v[0])) }

// queryTag marks the search target (no node has this id).
const queryTag = math.MaxUint32

func run(data string, nBase, nQuery, bits int, method string, center bool, efs string, efBuild int, rerank bool) error {
	d, err := dataset.Lookup(data)
	if err != nil {
		return err
	}
	all, err := d.Load()
	if err != nil {
		return err
	}
	if nBase == 0 {
		nBase = d.Base
	}
	if nQuery == 0 {
		nQuery = d.Queries
	}
	base, queries, err := all.Split(nBase, nQuery, dataset.SplitSeed)
	if err != nil {
		return err
	}
	dim := base.Dim
	truth, err := ann.ExactSearch(ann.L2, base.Data, queries.Data, dim, k)
	if err != nil {
		return err
	}

	// The float32 side: rows by id, and the current query.
	var query []float32
	floatDist := func(a, b hnsw.Vector) float32 {
		x := base.Row(idOf(a))
		y := query
		if id := math.Float32bits(b[0]); id != queryTag {
			y = base.Row(int(id))
		}
		return hnsw.EuclideanDistance(y, x) // the library's own float32 distance
	}

	g := hnsw.NewGraph[int]()
	g.Rng = rand.New(rand.NewSource(1))
	g.Distance = floatDist
	g.EfSearch = efBuild
	start := time.Now()
	for i := range base.Len() {
		g.Add(hnsw.MakeNode(i, idVector(i)))
	}
	fmt.Printf("%s: %d base, %d queries, d=%d; HNSW (coder/hnsw, M=%d) built on float32 in %.1f s, one core\n",
		d.Name, base.Len(), queries.Len(), dim, g.M, time.Since(start).Seconds())

	// The TurboQuant side: codes by id and a prepared query.
	m, err := ann.ParseMethod(method)
	if err != nil {
		return err
	}
	cfg := ann.Config{Dim: dim, Bits: bits, Method: m, Metric: ann.L2, Seed: 1}
	if center {
		if cfg.Mean, err = ann.Mean(ann.L2, base.Data, dim); err != nil {
			return err
		}
	}
	tq, err := ann.NewTQ(cfg)
	if err != nil {
		return err
	}
	flat := ann.NewFlat(tq)
	if err := flat.Add(base.Data); err != nil {
		return err
	}
	codes, cs := flat.Codes(), tq.CodeSize()
	prepared := tq.NewQuery()
	var one [1]float32
	codeDist := func(a, _ hnsw.Vector) float32 {
		id := idOf(a)
		_ = prepared.Distances(one[:], codes[id*cs:(id+1)*cs])
		return one[0]
	}

	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "vectors\tB/vec\tef\trecall@10\tQPS\tvs float recall\t")
	target := hnsw.Vector{math.Float32frombits(queryTag)}
	for _, s := range strings.Split(efs, ",") {
		ef, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return err
		}
		g.EfSearch = ef
		// coder/hnsw stops a search once an expansion improves nothing and
		// it holds k results, so it is asked for ef results (its k) and the
		// best 10 are taken by the variant's own distance.
		type variant struct {
			name   string
			bytes  int
			dist   hnsw.DistanceFunc
			rerank bool // order the candidates by exact distance
		}
		vs := []variant{
			{"float32", 4 * dim, floatDist, true},
			{"tq " + cfg.Method.String() + " " + strconv.Itoa(bits) + "b", cs, codeDist, false},
		}
		if rerank {
			vs = append(vs, variant{"tq+rerank", cs, codeDist, true})
		}
		var floatRecall float64
		for _, v := range vs {
			g.Distance = v.dist
			got := make([][]ann.Result, queries.Len())
			start := time.Now()
			for i := range queries.Len() {
				query = queries.Row(i)
				if err := prepared.Reset(query); err != nil {
					return err
				}
				nodes := g.Search(target, ef)
				res := make([]ann.Result, len(nodes))
				for j, n := range nodes {
					res[j].ID = n.Key
					if v.rerank {
						res[j].Distance = ann.ExactDistance(ann.L2, query, base.Row(n.Key))
					} else {
						res[j].Distance = codeDist(n.Value, target)
					}
				}
				sortByDistance(res)
				got[i] = res[:min(k, len(res))]
			}
			qps := float64(queries.Len()) / time.Since(start).Seconds()
			r := recallAtK(truth, got)
			if v.name == "float32" {
				floatRecall = r
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.3f\t%.0f\t%.3f\t\n", v.name, v.bytes, ef, r, qps, r/floatRecall)
		}
	}
	return tw.Flush()
}

func sortByDistance(r []ann.Result) {
	for i := 1; i < len(r); i++ {
		for j := i; j > 0 && r[j].Distance < r[j-1].Distance; j-- {
			r[j], r[j-1] = r[j-1], r[j]
		}
	}
}

// recallAtK is |true top k ∩ returned top k| / k, averaged over queries.
func recallAtK(truth, got [][]ann.Result) float64 {
	hit := 0
	for i := range truth {
		want := map[int]bool{}
		for _, r := range truth[i][:k] {
			want[r.ID] = true
		}
		for _, r := range got[i] {
			if want[r.ID] {
				hit++
			}
		}
	}
	return float64(hit) / float64(k*len(truth))
}
