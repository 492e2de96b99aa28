package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// result is one in-process run of the command.
type result struct {
	code           int
	stdout, stderr string
}

// xenckpt runs the command line in-process, as main would. No command of
// these tests may take long: a hang is cut after a minute (as Ctrl-C).
func xenckpt(t *testing.T, ctx context.Context, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, strings.NewReader(""), &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// jsonOf decodes a --json result.
func jsonOf(t *testing.T, r result) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &m), "stdout: %q stderr: %q", r.stdout, r.stderr)
	return m
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--no-such-flag"},
		{"xenstored"},                       // --socket missing
		{"xenstored", "--socket", "x", "y"}, // extra argument
	} {
		r := xenckpt(t, t.Context(), args...)
		assert.Equal(t, exitUsage, r.code, "%v: %+v", args, r)
		assert.Contains(t, r.stderr, "xenckpt help", "%v", args)
	}
}

func TestUsageErrorJSON(t *testing.T) {
	r := xenckpt(t, t.Context(), "--json", "xenstored")
	require.Equal(t, exitUsage, r.code)
	m := jsonOf(t, r)
	e := m["error"].(map[string]any)
	assert.Equal(t, "usage", e["class"])
	assert.Equal(t, float64(exitUsage), e["exit_code"])
	assert.NotEmpty(t, e["message"])
	assert.Empty(t, r.stderr, "with --json the error goes to stdout only")
}

func TestHelpListsCommands(t *testing.T) {
	r := xenckpt(t, t.Context(), "help")
	require.Equal(t, exitOK, r.code, r.stderr)
	for _, c := range []string{"xenstored"} {
		assert.Contains(t, r.stdout, c)
	}
}
