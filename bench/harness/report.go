package harness

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// Machine records the facts a reader needs to judge the numbers.
type Machine struct {
	NumCPU      int
	CPUModel    string
	Kernel      string
	HarnessGo   string // the Go that built the harness
	GoToolchain string // `go version`
	DataDirFS   string // file system of the servers' data dirs
	Etcd        string // etcd server version
	EtcdClient  string // etcd Go client module version
	Agentstate  string // how agentstate was obtained
}

// MachineFacts gathers what it can; unknown facts are "unknown".
func MachineFacts(ctx context.Context, dataDir string) Machine {
	m := Machine{
		NumCPU:      runtime.NumCPU(),
		CPUModel:    cpuModel(),
		Kernel:      kernel(),
		HarnessGo:   runtime.Version(),
		GoToolchain: goVersion(ctx),
		DataDirFS:   fsType(dataDir),
		EtcdClient:  moduleVersion("go.etcd.io/etcd/client/v3"),
	}
	return m
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return runtime.GOOS
	}
	return runtime.GOOS + " " + strings.TrimSpace(string(b))
}

func goVersion(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "version").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(strings.TrimPrefix(string(out), "go version "))
}

func moduleVersion(path string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	for _, d := range bi.Deps {
		if d.Path == path {
			return d.Path + " " + d.Version
		}
	}
	return path + " (version unknown)"
}

func fsType(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return "unknown"
	}
	names := map[int64]string{
		0xEF53:     "ext2/3/4",
		0x01021994: "tmpfs (fsync is free: numbers are not durable-disk numbers)",
		0x58465342: "xfs",
		0x9123683E: "btrfs",
		0x794c7630: "overlayfs",
		0x2FC12FC1: "zfs",
		0x6969:     "nfs",
		0x65735546: "fuse",
	}
	if n, ok := names[int64(st.Type)]; ok {
		return n
	}
	return fmt.Sprintf("0x%x", st.Type)
}

// Report is everything printed at the end of a run.
type Report struct {
	Started  time.Time
	Command  string
	Machine  Machine
	Workload []string // one line each
	Results  []*Result
	Notes    []string
}

type ratioRow struct {
	op                     Op
	clients                int
	ops, p50, p99          float64
	hasOps, hasP50, hasP99 bool
}

// ratios pairs agentstate and etcd results of the same op and clients.
func (r *Report) ratios() []ratioRow {
	type k struct {
		op Op
		c  int
	}
	etcd := map[k]*Result{}
	for _, x := range r.Results {
		if x.System == "etcd" {
			etcd[k{x.Op, x.Clients}] = x
		}
	}
	var rows []ratioRow
	for _, a := range r.Results {
		if a.System != "agentstate" {
			continue
		}
		e, ok := etcd[k{a.Op, a.Clients}]
		if !ok {
			continue
		}
		row := ratioRow{op: a.Op, clients: a.Clients}
		if et := e.Throughput(); et > 0 {
			row.ops, row.hasOps = a.Throughput()/et, true
		}
		if ep := e.Percentile(50); ep > 0 && a.Samples() > 0 {
			row.p50, row.hasP50 = float64(a.Percentile(50))/float64(ep), true
		}
		if ep := e.Percentile(99); ep > 0 && a.Samples() > 0 {
			row.p99, row.hasP99 = float64(a.Percentile(99))/float64(ep), true
		}
		rows = append(rows, row)
	}
	return rows
}

func fmtMiB(b int64) string {
	if b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

// fmtShare is CPU time as cores used over elapsed.
func fmtShare(cpu, elapsed time.Duration) string {
	if cpu <= 0 || elapsed <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f cores", cpu.Seconds()/elapsed.Seconds())
}

func fmtPerSub(b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f KiB", b/1024)
}

// watchHeader and watchRow are the change-feed table (watch and fan-out
// phases): what was written, what arrived, and what went wrong.
var watchHeader = []string{"system", "op", "subs", "writes/s", "writes ok", "write err", "write p50",
	"events", "events/s", "p50", "p99", "missed", "dup", "out of order", "foreign", "stream err",
	"subscribe", "harness cpu", "RSS before", "RSS idle subs", "RSS/sub", "RSS after"}

func watchRow(x *Result) []string {
	w := x.Watch
	rate := "-"
	if x.Elapsed > 0 {
		rate = fmt.Sprintf("%.0f (target %.0f)", float64(w.Writes+w.WriteErrors)/x.Elapsed.Seconds(), w.Rate)
	}
	missed := fmt.Sprint(w.Missed)
	if w.DrainTimedOut {
		missed += " (drain timed out)"
	}
	return []string{x.System, string(x.Op), fmt.Sprint(w.Subscribers), rate, fmt.Sprint(w.Writes), fmt.Sprint(w.WriteErrors),
		fmtLat(w.WriteP50), fmt.Sprint(w.Delivered), fmt.Sprintf("%.0f", x.Throughput()),
		fmtLat(x.Percentile(50)), fmtLat(x.Percentile(99)), missed, fmt.Sprint(w.Duplicates),
		fmt.Sprint(w.OutOfOrder), fmt.Sprint(w.Foreign), fmt.Sprint(w.StreamErrors + w.SubscribeErrors),
		fmt.Sprintf("%.0f ms", float64(w.SubscribeTime)/float64(time.Millisecond)), fmtShare(w.HarnessCPU, x.Elapsed),
		fmtMiB(w.RSSBefore), fmtMiB(w.RSSIdle), fmtPerSub(w.RSSPerSubscriber()), fmtMiB(w.RSSAfter)}
}

func (r *Report) watchResults() []*Result {
	var out []*Result
	for _, x := range r.Results {
		if x.Watch != nil {
			out = append(out, x)
		}
	}
	return out
}

const watchLegend = "change feed (watch, fanout): one writer at a fixed rate, every subscriber holds one subscription; " +
	"events = (subscriber, event) pairs of measured writes delivered; p50/p99 = write start to event read by the subscriber; " +
	"missed/dup/out of order counted per subscriber over every successful write (warm-up included); " +
	"stream err = streams that broke (then resumed) or could not open; harness cpu = the load generator's own CPU use in the window; RSS/sub = (RSS idle subs − RSS before) / subs"

func fmtLat(d time.Duration) string {
	return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond))
}

func fmtCPU(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
}

func fmtRatio(v float64, ok bool) string {
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%.2fx", v)
}

func (r *Report) machineLines() []string {
	m := r.Machine
	return []string{
		fmt.Sprintf("cpus (nproc): %d × %s", m.NumCPU, m.CPUModel),
		fmt.Sprintf("kernel: %s", m.Kernel),
		fmt.Sprintf("go: %s (harness built with %s)", m.GoToolchain, m.HarnessGo),
		fmt.Sprintf("etcd: %s; client %s", m.Etcd, m.EtcdClient),
		fmt.Sprintf("agentstate: %s", m.Agentstate),
		fmt.Sprintf("data dirs on: %s", m.DataDirFS),
		"client and servers share the same machine",
	}
}

func (r *Report) errorLines() []string {
	var out []string
	for _, x := range r.Results {
		if x.Errors == 0 {
			continue
		}
		out = append(out, fmt.Sprintf("%s %s c=%d: %d errors of %d ops (%.2f%%)", x.System, x.Op, x.Clients,
			x.Errors, x.Errors+x.Ops, 100*float64(x.Errors)/float64(x.Errors+x.Ops)))
		keys := make([]string, 0, len(x.ErrorSamples))
		for k := range x.ErrorSamples {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int { return int(x.ErrorSamples[b] - x.ErrorSamples[a]) })
		for _, k := range keys {
			out = append(out, fmt.Sprintf("    %6d × %s", x.ErrorSamples[k], k))
		}
	}
	return out
}

// WriteText prints the report as aligned plain-text tables.
func (r *Report) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "\n== agentstate vs etcd, %s ==\n", r.Started.UTC().Format(time.RFC3339))
	for _, l := range r.machineLines() {
		fmt.Fprintf(bw, "  %s\n", l)
	}
	for _, l := range r.Workload {
		fmt.Fprintf(bw, "  %s\n", l)
	}
	fmt.Fprintln(bw)
	tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "system\top\tclients\tops/s\tp50\tp99\terrors\tsrv cpu/op\t")
	for _, x := range r.Results {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%s\t%s\t%d\t%s\t\n", x.System, x.Op, x.Clients, x.Throughput(),
			fmtLat(x.Percentile(50)), fmtLat(x.Percentile(99)), x.Errors, fmtCPU(x.ServerCPUPerOp()))
	}
	tw.Flush()
	if wr := r.watchResults(); len(wr) > 0 {
		fmt.Fprintf(bw, "\n%s\n", watchLegend)
		tw = tabwriter.NewWriter(bw, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, strings.Join(watchHeader, "\t")+"\t")
		for _, x := range wr {
			fmt.Fprintln(tw, strings.Join(watchRow(x), "\t")+"\t")
		}
		tw.Flush()
	}
	if rows := r.ratios(); len(rows) > 0 {
		fmt.Fprintln(bw, "\nagentstate / etcd (ops/s: higher is better for agentstate; latency: lower is better)")
		tw = tabwriter.NewWriter(bw, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "op\tclients\tops/s\tp50\tp99\t")
		for _, row := range rows {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t\n", row.op, row.clients,
				fmtRatio(row.ops, row.hasOps), fmtRatio(row.p50, row.hasP50), fmtRatio(row.p99, row.hasP99))
		}
		tw.Flush()
	}
	if el := r.errorLines(); len(el) > 0 {
		fmt.Fprintln(bw, "\nerrors:")
		for _, l := range el {
			fmt.Fprintf(bw, "  %s\n", l)
		}
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(bw, "\nnotes:")
		for _, n := range r.Notes {
			fmt.Fprintf(bw, "  - %s\n", n)
		}
	}
	return bw.Flush()
}

// WriteMarkdown writes the report as a markdown section for
// docs/benchmarks.md.
func (r *Report) WriteMarkdown(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "## agentstate vs etcd (%s)\n\n", r.Started.UTC().Format("2006-01-02"))
	if r.Command != "" {
		fmt.Fprintf(bw, "Command (from `bench/`):\n\n```sh\n%s\n```\n\n", r.Command)
	}
	fmt.Fprintln(bw, "Machine:")
	fmt.Fprintln(bw)
	for _, l := range r.machineLines() {
		fmt.Fprintf(bw, "- %s\n", l)
	}
	fmt.Fprintln(bw, "\nWorkload:")
	fmt.Fprintln(bw)
	for _, l := range r.Workload {
		fmt.Fprintf(bw, "- %s\n", l)
	}
	fmt.Fprintln(bw)
	fmt.Fprintln(bw, "| system | op | clients | ops/s | p50 | p99 | errors | server CPU/op |")
	fmt.Fprintln(bw, "|---|---|---:|---:|---:|---:|---:|---:|")
	for _, x := range r.Results {
		fmt.Fprintf(bw, "| %s | %s | %d | %.0f | %s | %s | %d | %s |\n", x.System, x.Op, x.Clients, x.Throughput(),
			fmtLat(x.Percentile(50)), fmtLat(x.Percentile(99)), x.Errors, fmtCPU(x.ServerCPUPerOp()))
	}
	if wr := r.watchResults(); len(wr) > 0 {
		fmt.Fprintf(bw, "\nChange feed: %s.\n\n", watchLegend)
		fmt.Fprintf(bw, "| %s |\n", strings.Join(watchHeader, " | "))
		fmt.Fprint(bw, "|---|---|")
		for range watchHeader[2:] {
			fmt.Fprint(bw, "---:|")
		}
		fmt.Fprintln(bw)
		for _, x := range wr {
			fmt.Fprintf(bw, "| %s |\n", strings.Join(watchRow(x), " | "))
		}
	}
	if rows := r.ratios(); len(rows) > 0 {
		fmt.Fprintln(bw, "\nRatio agentstate / etcd (ops/s: above 1 is better for agentstate; latency: below 1 is better):")
		fmt.Fprintln(bw)
		fmt.Fprintln(bw, "| op | clients | ops/s | p50 | p99 |")
		fmt.Fprintln(bw, "|---|---:|---:|---:|---:|")
		for _, row := range rows {
			fmt.Fprintf(bw, "| %s | %d | %s | %s | %s |\n", row.op, row.clients,
				fmtRatio(row.ops, row.hasOps), fmtRatio(row.p50, row.hasP50), fmtRatio(row.p99, row.hasP99))
		}
	}
	if el := r.errorLines(); len(el) > 0 {
		fmt.Fprintln(bw, "\nErrors:\n\n```")
		for _, l := range el {
			fmt.Fprintln(bw, l)
		}
		fmt.Fprintln(bw, "```")
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(bw, "\nNotes:")
		fmt.Fprintln(bw)
		for _, n := range r.Notes {
			fmt.Fprintf(bw, "- %s\n", n)
		}
	}
	return bw.Flush()
}
