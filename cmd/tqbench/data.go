package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"text/tabwriter"

	"github.com/turboquant-go/tq/dataset"
)

func runData(args []string, stdout io.Writer) error {
	usage := fmt.Errorf("usage: tqbench data fetch glove|fmnist | tqbench data info [--json]")
	if len(args) == 0 {
		return usage
	}
	switch args[0] {
	case "fetch":
		if len(args) < 2 {
			return usage
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		for _, name := range args[1:] {
			d, err := dataset.Lookup(name)
			if err != nil {
				return err
			}
			if _, err := d.Fetch(ctx, stdout); err != nil {
				return err
			}
		}
		return nil
	case "info":
		fs := newFlags("data info")
		asJSON := fs.Bool("json", false, "print JSON")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		dir, err := dataset.Dir()
		if err != nil {
			return err
		}
		var infos []dataset.Info
		for _, d := range dataset.Datasets {
			in, err := d.Stat()
			if err != nil {
				return err
			}
			infos = append(infos, in)
		}
		if *asJSON {
			return writeJSON(stdout, infos)
		}
		fmt.Fprintf(stdout, "cache folder: %s (set TQ_DATA_DIR to change)\n\n", dir)
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "dataset\tfetched\tvectors\tdim\tMB\tsplit (base+queries)\t")
		for _, in := range infos {
			fmt.Fprintf(tw, "%s\t%v\t%d\t%d\t%.1f\t%d+%d\t\n", in.Name, in.Fetched, in.Vectors, in.Dim, float64(in.Bytes)/1e6, in.Base, in.Queries)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, in := range infos {
			if !in.Fetched {
				fmt.Fprintf(stdout, "fetch %s: %s\n", in.Name, in.FetchCommand())
			}
		}
		return nil
	}
	return usage
}
