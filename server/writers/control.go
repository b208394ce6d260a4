package writers

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/fsrvpd/fsrvpd/client/writerctl"
)

// maxDocument bounds what ReadSetDocument returns.
const maxDocument = 4 << 20

// Control serves fsrvpd's private writer-control interface (package
// client/writerctl) over a Coordinator.
type Control struct {
	C *Coordinator
	// Authorize decides who may call: FSRVP's rule (fsrvp.Handler.Authorized).
	Authorize func(context.Context) bool
}

var _ writerctl.Server = Control{}

func (c Control) log(ctx context.Context, op string) *logrus.Entry {
	return c.C.log.WithField("op", op)
}

// ReadSetDocument returns a document of a set: name is relative to the
// set's directory ("/" or "\" separated) and names an .xml file.
func (c Control) ReadSetDocument(ctx context.Context, setID uuid.UUID, name string) (string, uint32) {
	if !c.Authorize(ctx) {
		c.log(ctx, "ReadSetDocument").Warn("access denied")
		return "", writerctl.E_ACCESSDENIED
	}
	name = strings.ReplaceAll(name, `\`, "/")
	if setID == uuid.Nil || !filepath.IsLocal(name) || !strings.HasSuffix(strings.ToLower(name), ".xml") {
		return "", writerctl.E_INVALIDARG
	}
	f, err := os.Open(filepath.Join(c.C.Dir(setID), filepath.FromSlash(name)))
	if err != nil {
		return "", writerctl.E_FILE_NOT_FOUND
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxDocument+1))
	if err != nil || len(data) > maxDocument {
		return "", writerctl.E_FAIL
	}
	return string(data), writerctl.S_OK
}

// RunWriterService runs a writer's service-stop or service-start hook.
func (c Control) RunWriterService(ctx context.Context, writer string, action uint32) uint32 {
	log := c.log(ctx, "RunWriterService").WithField("writer", writer)
	if !c.Authorize(ctx) {
		log.Warn("access denied")
		return writerctl.E_ACCESSDENIED
	}
	p := map[uint32]Phase{writerctl.ServiceStop: PhaseServiceStop, writerctl.ServiceStart: PhaseServiceStart}[action]
	if p == "" {
		return writerctl.E_INVALIDARG
	}
	err := c.C.RunService(ctx, writer, p)
	switch {
	case err == nil:
		log.WithField("phase", p).Info("writer service hook ran")
		return writerctl.S_OK
	case errors.Is(err, ErrUnknownWriter), errors.Is(err, ErrNoHook):
		return writerctl.E_FILE_NOT_FOUND
	default:
		log.WithError(err).WithField("phase", p).Error("writer service hook failed")
		return writerctl.E_FAIL
	}
}
