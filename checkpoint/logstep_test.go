package checkpoint_test

import (
	"context"
	"log/slog"
	"sync"
)

// stepHandler is a slog.Handler that calls fn once, when the Controller
// logs a record with message msg. Tests use it to act at an exact step of
// an operation (cancel once the request is out, once the guest has
// acknowledged) instead of after a guessed delay, which a loaded CI
// machine under -race overruns.
type stepHandler struct {
	msg  string
	once *sync.Once
	fn   func()
}

// atStep returns a logger for Config.Logger that calls fn when the
// Controller logs msg.
func atStep(msg string, fn func()) *slog.Logger {
	return slog.New(stepHandler{msg: msg, once: new(sync.Once), fn: fn})
}

func (h stepHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h stepHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.once.Do(h.fn)
	}
	return nil
}

func (h stepHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h stepHandler) WithGroup(string) slog.Handler      { return h }
