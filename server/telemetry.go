package server

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/fsrvpd/fsrvpd/client/vss"
	"github.com/fsrvpd/fsrvpd/server/fsrvp"
	"github.com/fsrvpd/fsrvpd/server/metrics"
	"github.com/fsrvpd/fsrvpd/storage"
)

// telemetry is fsrvpd's metrics: an fsrvp.Observer feeding counters and
// histograms, and gauges read from the service at scrape time. Every
// family is documented by its HELP text.
type telemetry struct {
	reg *metrics.Registry

	calls      *metrics.CounterVec
	latency    *metrics.HistogramVec
	steps      *metrics.HistogramVec
	freeze     *metrics.HistogramVec
	jobs       *metrics.CounterVec
	expiries   *metrics.CounterVec
	expiredSet *metrics.CounterVec
	pruned     *metrics.CounterVec
	admin      *metrics.CounterVec

	// Application writers (server/writers).
	writerFreeze   *metrics.HistogramVec
	writerFailures *metrics.CounterVec

	service func() *fsrvp.Service
	backend storage.Backend

	// The scan of the backend and the exposer (orphans, usage) is cached
	// for scanTTL so that scrapes stay cheap.
	mu       sync.Mutex
	scanned  time.Time
	orphans  map[string]float64
	usage    map[string]float64
	scanErrs float64
}

const scanTTL = 15 * time.Second

func newTelemetry(service func() *fsrvp.Service, backend storage.Backend) *telemetry {
	r := &metrics.Registry{}
	t := &telemetry{reg: r, service: service, backend: backend}
	t.calls = r.NewCounterVec("fsrvpd_fsrvp_calls_total", "FSRVP calls served, by method, opnum and return code.", "op", "opnum", "result")
	t.latency = r.NewHistogramVec("fsrvpd_fsrvp_call_duration_seconds", "Time to serve an FSRVP call, by method.", metrics.DurationBuckets, "op")
	t.steps = r.NewHistogramVec("fsrvpd_sequence_step_duration_seconds", "Duration of successful PrepareShadowCopySet, CommitShadowCopySet and ExposeShadowCopySet calls.", metrics.DurationBuckets, "step")
	t.freeze = r.NewHistogramVec("fsrvpd_freeze_window_seconds", "Time the snapshot job of a commit took to snapshot every volume of a set (the freeze window).", metrics.DurationBuckets)
	t.writerFreeze = r.NewHistogramVec("fsrvpd_writers_freeze_window_seconds", "Time application writers stayed frozen around a set's snapshots, from the first freeze to the last thaw.", metrics.DurationBuckets)
	t.writerFailures = r.NewCounterVec("fsrvpd_writer_failures_total", "Writers failed around a snapshot, by writer and phase.", "writer", "phase")
	t.jobs = r.NewCounterVec("fsrvpd_snapshot_jobs_total", "Snapshot jobs of commits, by result (ok, error) .", "result")
	t.expiries = r.NewCounterVec("fsrvpd_timer_expiries_total", "Expiries of the message sequence timer (MS-FSRVP 3.1.5).")
	t.expiredSet = r.NewCounterVec("fsrvpd_timer_deleted_sets_total", "Shadow copy sets deleted by the message sequence timer.")
	t.pruned = r.NewCounterVec("fsrvpd_retention_pruned_sets_total", "Shadow copy sets deleted by the retention policies.")
	t.admin = r.NewCounterVec("fsrvpd_admin_requests_total", "Requests on the admin socket, by command and result (ok, error).", "cmd", "result")
	r.NewGaugeFunc("fsrvpd_sets", "Shadow copy sets, by state.", t.sets, "state")
	r.NewGaugeFunc("fsrvpd_snapshots", "Snapshots held by shadow copy sets, by volume.", t.snapshots, "volume")
	r.NewGaugeFunc("fsrvpd_snapshot_bytes", "Space held only by the snapshots of a volume, where the backend can tell (btrfs with qgroups, zfs).", t.bytes, "volume")
	r.NewGaugeFunc("fsrvpd_orphans", "Snapshots and exposed shares that belong to no set (fsrvp admin orphans; cached 15 s).", t.orphanGauge, "kind")
	r.NewGaugeFunc("fsrvpd_scan_errors", "1 when the last scan of the backend and shares for the orphan and usage gauges failed.", func() []metrics.Sample {
		t.scan()
		t.mu.Lock()
		defer t.mu.Unlock()
		return []metrics.Sample{{Value: t.scanErrs}}
	})
	return t
}

// FSRVPCall implements fsrvp.Observer.
func (t *telemetry) FSRVPCall(ev fsrvp.CallEvent) {
	t.calls.Inc(ev.Op, fmt.Sprint(ev.Opnum), ev.Result.Name())
	t.latency.Observe(ev.Duration.Seconds(), ev.Op)
	if ev.Result != fsrvp.S_OK {
		return
	}
	switch ev.Op {
	case "PrepareShadowCopySet":
		t.steps.Observe(ev.Duration.Seconds(), "prepare")
	case "CommitShadowCopySet":
		t.steps.Observe(ev.Duration.Seconds(), "commit")
	case "ExposeShadowCopySet":
		t.steps.Observe(ev.Duration.Seconds(), "expose")
	}
}

// SnapshotsTaken implements fsrvp.Observer.
func (t *telemetry) SnapshotsTaken(_ uuid.UUID, _ int, d time.Duration, err error) {
	if err != nil {
		t.jobs.Inc("error")
		return
	}
	t.jobs.Inc("ok")
	t.freeze.Observe(d.Seconds())
}

// writersThawed is writers.Coordinator's OnThaw.
func (t *telemetry) writersThawed(window time.Duration, states []vss.WriterState) {
	t.writerFreeze.Observe(window.Seconds())
	for _, w := range states {
		if w.Failed() {
			t.writerFailures.Inc(w.FriendlyName, w.Phase)
		}
	}
}

// TimerExpired implements fsrvp.Observer.
func (t *telemetry) TimerExpired(n int) {
	t.expiries.Inc()
	t.expiredSet.Add(float64(n))
}

func (t *telemetry) adminRequest(cmd string, ok bool) {
	r := "ok"
	if !ok {
		r = "error"
	}
	t.admin.Inc(cmd, r)
}

var allStates = []fsrvp.Status{fsrvp.Started, fsrvp.Added, fsrvp.CreationInProgress, fsrvp.Committed, fsrvp.Exposed, fsrvp.Recovered}

func (t *telemetry) sets() []metrics.Sample {
	n := map[fsrvp.Status]float64{}
	if s := t.service(); s != nil {
		for _, set := range s.Overview().Sets {
			n[set.Status]++
		}
	}
	out := make([]metrics.Sample, len(allStates))
	for i, st := range allStates {
		out[i] = metrics.Sample{Labels: []string{st.String()}, Value: n[st]}
	}
	return out
}

func (t *telemetry) snapshots() []metrics.Sample {
	n := map[string]float64{}
	if s := t.service(); s != nil {
		for _, set := range s.Overview().Sets {
			for _, sc := range set.Copies {
				if sc.SnapshotPath != "" {
					n[sc.VolumeRoot]++
				}
			}
		}
	}
	out := make([]metrics.Sample, 0, len(n))
	for v, c := range n {
		out = append(out, metrics.Sample{Labels: []string{v}, Value: c})
	}
	return out
}

// scan refreshes the cached orphan counts and snapshot usage.
func (t *telemetry) scan() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if time.Since(t.scanned) < scanTTL {
		return
	}
	s := t.service()
	if s == nil {
		return
	}
	t.scanned = time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t.scanErrs = 0
	o, err := s.Orphans(ctx)
	if err != nil {
		t.scanErrs = 1
	} else {
		t.orphans = map[string]float64{"snapshot": float64(len(o.Snapshots)), "share": float64(len(o.Shares))}
	}
	ur, ok := t.backend.(storage.UsageReporter)
	if !ok {
		return
	}
	vols := map[string]storage.Volume{}
	for _, set := range s.Overview().Sets {
		for _, sc := range set.Copies {
			vols[sc.VolumeID] = storage.Volume{ID: sc.VolumeID, Root: sc.VolumeRoot}
		}
	}
	t.usage = map[string]float64{}
	for _, v := range vols {
		u, err := ur.Usage(ctx, v)
		if err != nil {
			t.scanErrs = 1
			continue
		}
		if u.Known {
			t.usage[v.Root] = float64(u.SnapshotBytes)
		}
	}
}

func (t *telemetry) orphanGauge() []metrics.Sample {
	t.scan()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.orphans == nil {
		return nil
	}
	return []metrics.Sample{{Labels: []string{"snapshot"}, Value: t.orphans["snapshot"]}, {Labels: []string{"share"}, Value: t.orphans["share"]}}
}

func (t *telemetry) bytes() []metrics.Sample {
	t.scan()
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]metrics.Sample, 0, len(t.usage))
	for v, b := range t.usage {
		out = append(out, metrics.Sample{Labels: []string{v}, Value: b})
	}
	return out
}
