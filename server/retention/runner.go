package retention

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/fsrvpd/fsrvpd/server/fsrvp"
)

// Runner applies the policies to a running service.
type Runner struct {
	Service  *fsrvp.Service
	Policies map[string]Policy
	// Interval between runs; zero means 15 minutes.
	Interval time.Duration
	Log      *logrus.Entry
	// Pruned, if set, is called with the number of sets each run deleted
	// (metrics).
	Pruned func(n int)

	mu  sync.Mutex
	now func() time.Time
}

// SetClock replaces the clock (time.Now by default), for tests and for
// simulating a later date with a dry run.
func (r *Runner) SetClock(now func() time.Time) {
	r.mu.Lock()
	r.now = now
	r.mu.Unlock()
}

// Result is what one run decided and did.
type Result struct {
	Now       time.Time     `json:"now"`
	DryRun    bool          `json:"dry_run"`
	Decisions []SetDecision `json:"decisions"`
	// Deleted are the sets deleted; Failed the ones whose deletion failed
	// (they stay and are retried at the next run), with the error.
	Deleted []string          `json:"deleted"`
	Failed  map[string]string `json:"failed,omitempty"`
	// Connected are the sets due for pruning that were kept because SMB
	// clients had their shares connected, with who: they are pruned by a
	// later run once the clients are gone.
	Connected map[string]string `json:"connected,omitempty"`
}

// Candidates are the sets retention may consider: finished sets of a
// persistent context (NAS_ROLLBACK, APP_ROLLBACK). Sets in a creation
// sequence are never candidates.
func Candidates(o fsrvp.Overview) []Set {
	var out []Set
	for _, s := range o.Sets {
		if s.InCreation || s.CommitRunning || !fsrvp.Persistent(s.Context) {
			continue
		}
		out = append(out, Set{ID: s.ID.String(), Created: s.Created, Shares: s.Shares()})
	}
	return out
}

// Apply runs the policies once. Every decision is logged; with dryRun
// nothing is deleted. A non-zero at replaces the clock, for a dry run
// only (what would go at that date). A set that entered a creation
// sequence since the plan was made is refused by the service and skipped.
func (r *Runner) Apply(ctx context.Context, dryRun bool, at time.Time, who string) (Result, error) {
	r.mu.Lock()
	clock := r.now
	r.mu.Unlock()
	now := time.Now()
	if clock != nil {
		now = clock()
	}
	if !at.IsZero() {
		if !dryRun {
			return Result{}, errors.New("a date other than now is for dry runs only")
		}
		now = at
	}
	res := Result{Now: now, DryRun: dryRun, Deleted: []string{}}
	res.Decisions = Plan(r.Policies, Candidates(r.Service.Overview()), now)
	for _, d := range res.Decisions {
		log := r.Log.WithFields(logrus.Fields{"set_id": d.ID, "shares": d.Shares, "created": d.Created, "reason": d.Reason, "dry_run": dryRun})
		if !d.Prune {
			log.Debug("retention: keep")
			continue
		}
		log.Info("retention: prune")
		if dryRun {
			continue
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
		id, _ := uuid.Parse(d.ID)
		err := r.Service.DeleteSet(ctx, id, who, false)
		result := "ok"
		switch {
		case errors.Is(err, fsrvp.ErrSetInUse) || errors.Is(err, fsrvp.ErrNoSuchSet):
			log.WithError(err).Info("retention: set changed since the plan; skipped")
			continue
		case errors.Is(err, fsrvp.ErrSetConnected):
			if res.Connected == nil {
				res.Connected = map[string]string{}
			}
			res.Connected[d.ID] = err.Error()
			log.WithError(err).Info("retention: SMB clients are connected; kept until a later run")
			continue
		case err != nil:
			if res.Failed == nil {
				res.Failed = map[string]string{}
			}
			res.Failed[d.ID] = err.Error()
			result = err.Error()
		default:
			res.Deleted = append(res.Deleted, d.ID)
		}
		r.Service.Audit(fsrvp.AuditRecord{Op: "retention", SetID: id, Shares: d.Shares, Caller: who, Client: "local", Result: result})
	}
	if r.Pruned != nil {
		r.Pruned(len(res.Deleted))
	}
	return res, nil
}

// Run applies the policies every Interval until ctx ends.
func (r *Runner) Run(ctx context.Context) {
	iv := r.Interval
	if iv <= 0 {
		iv = 15 * time.Minute
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		if _, err := r.Apply(ctx, false, time.Time{}, "fsrvpd"); err != nil && ctx.Err() == nil {
			r.Log.WithError(err).Error("retention run failed")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
