// Package obs is jetsuite's operational view: structured logs (log/slog), Prometheus metrics
// and the /healthz, /readyz and /metrics endpoints.
package obs

import (
	"io"
	"log/slog"
	"os"
	"strings"
)

// NewLogger returns a slog logger writing to w in the given format ("text" or "json") at the
// given level ("debug", "info", "warn", "error").
func NewLogger(w io.Writer, format, level string) *slog.Logger {
	if w == nil {
		w = os.Stderr
	}
	var lv slog.Level
	switch strings.ToLower(level) {
	case "debug":
		lv = slog.LevelDebug
	case "warn":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	default:
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	if strings.EqualFold(format, "json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
