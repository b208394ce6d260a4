package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/user"
	"strconv"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/fsrvpd/fsrvpd/server/admin"
	"github.com/fsrvpd/fsrvpd/server/retention"
)

// startOps starts what serves operators rather than FSRVP clients: the
// retention runner, the admin socket and the metrics endpoint.
func (d *Daemon) startOps() error {
	bg, cancel := context.WithCancel(context.Background())
	d.stopBg = cancel
	if pols := d.cfg.Retention.Policies; len(pols) > 0 {
		m := make(map[string]retention.Policy, len(pols))
		for _, p := range pols {
			m[p.Share] = retention.Policy{KeepHourly: p.KeepHourly, KeepDaily: p.KeepDaily, KeepWeekly: p.KeepWeekly, KeepMonthly: p.KeepMonthly, MinAge: p.MinAge.Duration}
		}
		d.retention = &retention.Runner{
			Service: d.service, Policies: m, Interval: d.cfg.Retention.Interval.Duration,
			Log:    d.log.WithField("component", "retention"),
			Pruned: func(n int) { d.tel.pruned.Add(float64(n)) },
		}
		d.wg.Add(1)
		go func() { defer d.wg.Done(); d.retention.Run(bg) }()
		d.log.WithFields(logrus.Fields{"policies": len(m), "interval": d.cfg.Retention.Interval.Duration}).Info("retention enabled")
	}
	if d.cfg.Admin.Enabled {
		gid := -1
		if g := d.cfg.Admin.Group; g != "" {
			var err error
			if gid, err = lookupGroup(g); err != nil {
				return fmt.Errorf("admin.group: %w", err)
			}
		}
		path := d.cfg.AdminSocket()
		l, err := admin.Listen(path, gid)
		if err != nil {
			return err
		}
		d.adminL, d.adminSocket = l, path
		d.admin = &admin.Server{Service: d.service, Retention: d.retention, GID: gid,
			Log: d.log.WithField("component", "admin"), Requests: d.tel.adminRequest}
		d.wg.Add(1)
		go func() { defer d.wg.Done(); d.admin.Serve(l) }()
		d.log.WithFields(logrus.Fields{"addr": path, "group": d.cfg.Admin.Group}).Info("admin socket listening")
	}
	if a := d.cfg.Metrics.Listen; a != "" {
		l, err := net.Listen("tcp", a)
		if err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		if ap, ok := l.Addr().(*net.TCPAddr); ok && !ap.IP.IsLoopback() {
			d.log.WithField("addr", l.Addr()).Warn("metrics endpoint is not on loopback: anyone who reaches it sees share names and set counts")
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", d.tel.reg.Handler())
		d.metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		d.metricsAddr = l.Addr()
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			if err := d.metricsSrv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				d.errc <- fmt.Errorf("metrics: %w", err)
			}
		}()
		d.log.WithField("addr", l.Addr().String()+"/metrics").Info("metrics endpoint listening")
	}
	return nil
}

// stopOps stops what startOps started; it may be called twice.
func (d *Daemon) stopOps() {
	if d.stopBg != nil {
		d.stopBg()
	}
	if d.metricsSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		d.metricsSrv.Shutdown(ctx)
		cancel()
		d.metricsSrv = nil
	}
	if d.adminL != nil {
		d.adminL.Close()
		d.admin.Close()
		d.adminL = nil
	}
}

func lookupGroup(g string) (int, error) {
	if n, err := strconv.Atoi(g); err == nil && n >= 0 {
		return n, nil
	}
	grp, err := user.LookupGroup(g)
	if err != nil {
		return -1, err
	}
	return strconv.Atoi(grp.Gid)
}

// AdminSocket is the admin socket's path ("" when disabled).
func (d *Daemon) AdminSocket() string { return d.adminSocket }

// MetricsAddr is the metrics endpoint's address (nil when disabled).
func (d *Daemon) MetricsAddr() net.Addr { return d.metricsAddr }

// Retention is the retention runner (nil without policies).
func (d *Daemon) Retention() *retention.Runner { return d.retention }
