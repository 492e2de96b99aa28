package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestBarLine(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(1000, 0)
	b := &bar{w: &buf, label: "save", unit: "pages", start: now, now: func() time.Time { return now }, width: 10}
	now = now.Add(2 * time.Second)
	b.Update(50, 100, "round 1")
	assert.Equal(t, "\r\033[Ksave [=====     ]  50% 50/100 pages ETA 2s 25 pages/s round 1", buf.String())

	// Redraws are throttled, but the final one always shows.
	buf.Reset()
	now = now.Add(10 * time.Millisecond)
	b.Update(60, 100, "")
	assert.Empty(t, buf.String())
	b.Update(100, 100, "")
	assert.Contains(t, buf.String(), "100%")
	b.Done()
	assert.Equal(t, byte('\n'), buf.Bytes()[buf.Len()-1])

	var nilBar *bar
	nilBar.Update(1, 2, "") // a nil bar draws nothing and does not panic
	nilBar.Done()
}

func TestProgressOnlyOnTerminal(t *testing.T) {
	a := &app{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	assert.Nil(t, a.newBar("x", "pages"), "a buffer is not a terminal")
	a.progress = optionalBool{set: true, v: true}
	assert.NotNil(t, a.newBar("x", "pages"), "--progress forces bars")
}

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
	}{
		{nil, exitOK},
		{errors.New("boom"), exitFailure},
		{usageErrorf("bad"), exitUsage},
		{fmt.Errorf("opening: %w", fs.ErrNotExist), exitNotFound},
		{fmt.Errorf("opening: %w", fs.ErrPermission), exitPermission},
		{fmt.Errorf("op: %w", context.Canceled), exitCancelled},
		{fmt.Errorf("send: %w", os.ErrDeadlineExceeded), exitTransfer},
		{withCode(exitImage, errors.New("x")), exitImage},
	} {
		assert.Equal(t, tc.code, exitCode(tc.err), "%v", tc.err)
	}
	for code := range exitNames {
		assert.NotEmpty(t, exitNames[code])
	}
}

func TestIsTerminal(t *testing.T) {
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Skip(err)
	}
	defer devnull.Close()
	assert.False(t, isTerminal(devnull), "/dev/null is a character device, not a terminal")
	assert.False(t, isTerminal(&bytes.Buffer{}))
}
