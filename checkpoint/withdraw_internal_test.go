package checkpoint

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/xenstore/xenstoretest"
)

// TestWithdraw drives the transactional withdrawal of an unacknowledged
// suspend request against the embedded xenstored: a pending request is
// replaced by "" and the cause returned; an acknowledgement that landed
// after the timeout but before the transaction wins (libxl's "last-minute
// ack"), as does a removed node.
func TestWithdraw(t *testing.T) {
	srv := xenstoretest.NewServer(nil)
	t.Cleanup(func() { _ = srv.Close() })
	xs, err := srv.Client(0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = xs.Close() })
	c := New(nil, xs, &Config{LockDir: t.TempDir()})
	s := &suspender{c: c, dom: 7, domPath: "/local/domain/7"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	path := s.node(nodeShutdown)

	for _, tc := range []struct {
		name   string
		value  *string // nil: node absent
		want   error
		remain string
	}{
		{"pending", ptr("suspend"), ErrNotAcknowledged, ""},
		{"late ack", ptr(""), nil, ""},
		{"late other value", ptr("poweroff"), nil, "poweroff"},
		{"node removed", nil, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_ = xs.Remove(ctx, path)
			if tc.value != nil {
				require.NoError(t, xs.Write(ctx, path, []byte(*tc.value)))
			}
			err := s.withdraw(ctx, ErrNotAcknowledged)
			if tc.want == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tc.want)
			}
			v, rerr := xs.Read(ctx, path)
			if tc.value == nil {
				assert.Error(t, rerr, "withdrawal must not recreate the node")
				return
			}
			require.NoError(t, rerr)
			assert.Equal(t, tc.remain, string(v))
		})
	}
}

func ptr(s string) *string { return &s }
