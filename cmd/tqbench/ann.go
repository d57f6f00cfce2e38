package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/turboquant-go/tq/ann"
	"github.com/turboquant-go/tq/dataset"
)

// annRow is one line of the ann table. RecallAt1 maps k to recall@1@k: the
// fraction of queries whose true nearest neighbour is in the returned top k.
type annRow struct {
	Dataset       string          `json:"dataset"`
	Metric        string          `json:"metric"`
	Method        string          `json:"method"`
	Bits          float64         `json:"bits"`
	BytesPerVec   int             `json:"bytes_per_vector"`
	Base          int             `json:"base"`
	Queries       int             `json:"queries"`
	EncodeSeconds float64         `json:"encode_seconds"` // one core
	TrainSeconds  float64         `json:"train_seconds"`  // 0 for TurboQuant
	QPS           float64         `json:"qps"`            // one core, flat scan
	CodesPerSec   float64         `json:"codes_per_second"`
	RecallAt1     map[int]float64 `json:"recall_at_1_at_k"`
	Recall10At10  float64         `json:"recall_10_at_10"`
}

func runANN(args []string, stdout io.Writer) error {
	fs := newFlags("ann")
	data := fs.String("data", "glove100", "glove100, fmnist or a raw .f32 FILE (see package dataset)")
	bitsFlag := fs.String("bits", "1,2,3,4", "bits per coordinate")
	kFlag := fs.String("k", "1,2,4,8,16,32,64", "k values for recall@1@k")
	methodsFlag := fs.String("methods", "mse,mse-norm,prod", "mse, mse-norm, prod, polar (polar ignores --bits), pca (fitted: ann.FitPCA)")
	metricsFlag := fs.String("metrics", "ip,cosine", "ip, cosine, l2")
	nBase := fs.Int("n", 0, "base vectors (0: the dataset's standard split)")
	nQuery := fs.Int("queries", 0, "held-out queries (0: the dataset's standard split)")
	seed := fs.Uint64("seed", 1, "quantizer seed")
	rounds := fs.Int("rounds", 0, "Hadamard rotation rounds (0: the turboquant default, 2 at d=100)")
	export := fs.String("export", "", "write base.f32, queries.f32 and truth-METRIC.i32 to this folder (for bench/faiss_compare.py)")
	faiss := fs.String("faiss", "", "JSON rows from bench/faiss_compare.py --json, merged into the table and plot")
	plotPath := fs.String("plot", "", "write a recall@1@k plot (PNG)")
	fromRows := fs.String("rows", "", "print and plot the rows of an earlier --json run instead of measuring")
	center := fs.String("center", "no", "subtract the base mean before rotation: no, yes or both")
	refine := fs.Int("refine", 0, "also report each method re-ranking its best k·R candidates against the float32 originals (0: off)")
	fastScan := fs.Bool("fastscan", false, "also report 4-bit mse and mse-norm through ann.FastScan (the 4-bit fast-scan layout)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	bits, err := intList(*bitsFlag)
	if err != nil {
		return err
	}
	ks, err := intList(*kFlag)
	if err != nil {
		return err
	}
	var rows []annRow
	if *fromRows != "" {
		if rows, err = readANNRows(*fromRows); err != nil {
			return err
		}
		return finishANN(stdout, rows, ks, *faiss, *plotPath, *asJSON)
	}
	var centerings []bool
	switch *center {
	case "no":
		centerings = []bool{false}
	case "yes":
		centerings = []bool{true}
	case "both":
		centerings = []bool{false, true}
	default:
		return fmt.Errorf("--center %q: want no, yes or both", *center)
	}
	if *refine < 0 {
		return fmt.Errorf("--refine %d is negative", *refine)
	}
	base, queries, name, err := loadANNData(*data, *nBase, *nQuery)
	if err != nil {
		return err
	}
	maxK := 10
	for _, k := range ks {
		if k < 1 || k > base.Len() {
			return fmt.Errorf("k=%d outside [1, %d]", k, base.Len())
		}
		maxK = max(maxK, k)
	}
	for _, ms := range strings.Split(*metricsFlag, ",") {
		metric, err := ann.ParseMetric(strings.TrimSpace(ms))
		if err != nil {
			return err
		}
		truth, err := ann.ExactSearch(metric, base.Data, queries.Data, base.Dim, maxK)
		if err != nil {
			return err
		}
		if *export != "" {
			if err := exportANN(*export, metric, base, queries, truth); err != nil {
				return err
			}
		}
		for _, mname := range strings.Split(*methodsFlag, ",") {
			if strings.TrimSpace(mname) == "pca" {
				for _, b := range bits {
					got, err := measurePCA(metric, b, base, queries, truth, ks, maxK, *refine)
					if err != nil {
						return err
					}
					for _, row := range got {
						row.Dataset = name
						rows = append(rows, row)
					}
				}
				continue
			}
			method, err := ann.ParseMethod(strings.TrimSpace(mname))
			if err != nil {
				return err
			}
			bl := bits
			if method == ann.Polar {
				bl = []int{0}
			}
			for _, c := range centerings {
				var mean []float32
				if c {
					if mean, err = ann.Mean(metric, base.Data, base.Dim); err != nil {
						return err
					}
				}
				for _, b := range bl {
					cfg := ann.Config{Dim: base.Dim, Bits: b, Method: method, Metric: metric, Seed: *seed, Rounds: *rounds, Mean: mean}
					got, err := measureANN(cfg, base, queries, truth, ks, maxK, *refine, *fastScan)
					if err != nil {
						return err
					}
					for _, row := range got {
						row.Dataset = name
						rows = append(rows, row)
					}
				}
			}
		}
	}
	return finishANN(stdout, rows, ks, *faiss, *plotPath, *asJSON)
}

func readANNRows(path string) ([]annRow, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rows []annRow
	if err := json.Unmarshal(b, &rows); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rows, nil
}

func finishANN(stdout io.Writer, rows []annRow, ks []int, faiss, plotPath string, asJSON bool) error {
	if faiss != "" {
		fr, err := readANNRows(faiss)
		if err != nil {
			return err
		}
		rows = append(rows, fr...)
	}
	if plotPath != "" {
		if err := plotRecall(plotPath, rows, ks); err != nil {
			return err
		}
	}
	if asJSON {
		return writeJSON(stdout, rows)
	}
	return printANN(stdout, rows, ks)
}

func loadANNData(data string, nBase, nQuery int) (base, queries *dataset.Vectors, name string, err error) {
	d, lerr := dataset.Lookup(data)
	var all *dataset.Vectors
	if lerr == nil {
		name = d.Name
		all, err = d.Load()
		if nBase == 0 {
			nBase = d.Base
		}
		if nQuery == 0 {
			nQuery = d.Queries
		}
	} else {
		name = filepath.Base(data)
		all, err = dataset.ReadRawFile(data)
		if err == nil {
			if nQuery == 0 {
				nQuery = min(1000, all.Len()/10)
			}
			if nBase == 0 {
				nBase = all.Len() - nQuery
			}
		}
	}
	if err != nil {
		return nil, nil, "", err
	}
	base, queries, err = all.Split(nBase, nQuery, dataset.SplitSeed)
	return base, queries, name, err
}

// measureANN measures one TurboQuant quantizer (measureQuantizer), with
// fastScan for 4-bit MSE codes.
func measureANN(cfg ann.Config, base, queries *dataset.Vectors, truth [][]ann.Result, ks []int, maxK, refine int, fastScan bool) ([]annRow, error) {
	q, err := ann.NewTQ(cfg)
	if err != nil {
		return nil, err
	}
	row := annRow{
		Metric: cfg.Metric.String(), Method: cfg.Method.String(), Bits: float64(cfg.Bits),
		BytesPerVec: q.CodeSize(), Base: base.Len(), Queries: queries.Len(), RecallAt1: map[int]float64{},
	}
	if cfg.Mean != nil {
		row.Method += "+center"
	}
	if cfg.Method == ann.Polar {
		row.Bits = 3.875
	}
	fastScan = fastScan && cfg.Bits == 4 && (cfg.Method == ann.MSE || cfg.Method == ann.MSENorm)
	return measureQuantizer(q, row, base, queries, truth, ks, maxK, refine, fastScan)
}

// measurePCA fits ann.PCA on the base (timed as training, on one core) and
// measures it like measureANN. Its bytes per vector count the codes only;
// the fitted axes (kept·dim floats, shared by the index) are reported in the
// method name.
func measurePCA(m ann.Metric, bits int, base, queries *dataset.Vectors, truth [][]ann.Result, ks []int, maxK, refine int) ([]annRow, error) {
	prev := runtime.GOMAXPROCS(1)
	start := time.Now()
	q, err := ann.FitPCA(m, base.Data, base.Dim, bits)
	train := time.Since(start).Seconds()
	runtime.GOMAXPROCS(prev)
	if err != nil {
		return nil, err
	}
	row := annRow{
		Metric: m.String(), Method: fmt.Sprintf("pca(%d axes)", q.Kept()), Bits: float64(bits), BytesPerVec: q.CodeSize(),
		Base: base.Len(), Queries: queries.Len(), RecallAt1: map[int]float64{}, TrainSeconds: train,
	}
	return measureQuantizer(q, row, base, queries, truth, ks, maxK, refine, false)
}

// measureQuantizer encodes the base with q and searches it: row, with
// refine > 0 a row for the same codes re-ranking k·refine candidates against
// the float32 originals (whose bytes it counts), and with fastScan a row for
// the same codes in ann.FastScan's layout.
func measureQuantizer(q ann.Quantizer, row annRow, base, queries *dataset.Vectors, truth [][]ann.Result, ks []int, maxK, refine int, fastScan bool) ([]annRow, error) {
	// Encode on one core: the number the per-core target is about.
	f := ann.NewFlat(q)
	prev := runtime.GOMAXPROCS(1)
	start := time.Now()
	err := f.Add(base.Data)
	row.EncodeSeconds = time.Since(start).Seconds()
	runtime.GOMAXPROCS(prev)
	if err != nil {
		return nil, err
	}
	rows := []annRow{row}
	if refine > 0 {
		r := row
		r.Method += fmt.Sprintf("+refine%d", refine)
		r.BytesPerVec += 4 * base.Dim
		r.RecallAt1 = map[int]float64{}
		rows = append(rows, r)
	}
	search := make([]func([]float32, ann.SearchOptions) ([][]ann.Result, error), len(rows))
	for i := range rows {
		search[i] = f.SearchBatch
	}
	if fastScan {
		fs, err := ann.NewFastScan(f)
		if err != nil {
			return nil, err
		}
		r := row
		r.Method += "+fastscan"
		r.BytesPerVec = fs.BytesPerVector()
		r.RecallAt1 = map[int]float64{}
		rows = append(rows, r)
		search = append(search, fs.SearchBatch)
	}
	for i := range rows {
		o := ann.SearchOptions{K: maxK, Workers: 1}
		if refine > 0 && i == 1 {
			o.Rerank, o.Originals = refine, base.Data
		}
		start = time.Now()
		got, err := search[i](queries.Data, o)
		el := time.Since(start).Seconds()
		if err != nil {
			return nil, err
		}
		r := &rows[i]
		r.QPS = float64(queries.Len()) / el
		r.CodesPerSec = float64(queries.Len()) * float64(base.Len()) / el
		for _, k := range ks {
			r.RecallAt1[k] = recallAt1AtK(truth, got, k)
		}
		r.Recall10At10 = recallNAtN(truth, got, 10)
	}
	return rows, nil
}

// recallAt1AtK is the fraction of queries whose true nearest neighbour is
// among the first k results.
func recallAt1AtK(truth, got [][]ann.Result, k int) float64 {
	hit := 0
	for i := range truth {
		for _, r := range got[i][:min(k, len(got[i]))] {
			if r.ID == truth[i][0].ID {
				hit++
				break
			}
		}
	}
	return float64(hit) / float64(len(truth))
}

// recallNAtN is |true top n ∩ returned top n| / n, averaged over queries.
func recallNAtN(truth, got [][]ann.Result, n int) float64 {
	hit := 0
	for i := range truth {
		want := map[int]bool{}
		for _, r := range truth[i][:n] {
			want[r.ID] = true
		}
		for _, r := range got[i][:min(n, len(got[i]))] {
			if want[r.ID] {
				hit++
			}
		}
	}
	return float64(hit) / float64(n*len(truth))
}

func printANN(w io.Writer, rows []annRow, ks []int) error {
	if len(rows) > 0 {
		fmt.Fprintf(w, "%s: %d base vectors, %d queries; encode and search on one core\n\n", rows[0].Dataset, rows[0].Base, rows[0].Queries)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "metric\tmethod\tbits\tB/vec\t")
	for _, k := range ks {
		fmt.Fprintf(tw, "R1@%d\t", k)
	}
	fmt.Fprintln(tw, "R10@10\tencode s\ttrain s\tQPS\tMcodes/s\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%g\t%d\t", r.Metric, r.Method, r.Bits, r.BytesPerVec)
		for _, k := range ks {
			if v, ok := r.RecallAt1[k]; ok {
				fmt.Fprintf(tw, "%.3f\t", v)
			} else {
				fmt.Fprint(tw, "–\t")
			}
		}
		fmt.Fprintf(tw, "%.3f\t%.3f\t%.3f\t%.0f\t%.1f\t\n", r.Recall10At10, r.EncodeSeconds, r.TrainSeconds, r.QPS, r.CodesPerSec/1e6)
	}
	return tw.Flush()
}

// exportANN writes the split and the ground truth for bench/faiss_compare.py:
// base.f32 and queries.f32 in the raw dataset format, and truth-METRIC.i32:
// "TQGT", u32 queries, u32 k, then queries·k int32 ids, little-endian.
func exportANN(dir string, m ann.Metric, base, queries *dataset.Vectors, truth [][]ann.Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, v := range map[string]*dataset.Vectors{"base.f32": base, "queries.f32": queries} {
		if err := dataset.WriteRawFile(filepath.Join(dir, name), v); err != nil {
			return err
		}
	}
	if len(truth) == 0 {
		return errors.New("no queries to export")
	}
	k := len(truth[0])
	b := []byte("TQGT")
	b = binary.LittleEndian.AppendUint32(b, uint32(len(truth)))
	b = binary.LittleEndian.AppendUint32(b, uint32(k))
	for _, t := range truth {
		for _, r := range t {
			b = binary.LittleEndian.AppendUint32(b, uint32(r.ID))
		}
	}
	return os.WriteFile(filepath.Join(dir, "truth-"+m.String()+".i32"), b, 0o644)
}
