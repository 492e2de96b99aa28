package examples_test

import (
	"context"
	"os/exec"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestExamplesOnSimulator builds every example and runs it with no flags,
// which uses the simulated host, and checks what it printed.
func TestExamplesOnSimulator(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string // regular expressions, each must match the output
	}{
		{"checkpoint-cancel", nil, 0, []string{
			`checkpointed domain \d+: \d+ pages, guest paused .*, cancelled with the seed convention`,
			`guest saw 0 from its suspend hypercall and keeps running \(counter \d+ -> \d+\)`,
		}},
		{"save-restore", nil, 0, []string{
			`saved domain \d+ to .*: \d+ pages, paused .*; domain destroyed`,
			`restored as domain \d+`,
			`restored guest counts on: \d+ at save, \d+ now`,
		}},
		{"live-migration", nil, 0, []string{
			`precopy round \d+`,
			`migrated domain \d+ to 127\.0\.0\.1:\d+: \d+ rounds, \d+ pages, downtime`,
			`runs the same guest: counter \d+ before, \d+ now`,
		}},
		{"remus", []string{"-epochs", "5"}, 0, []string{
			`epoch 5: primary paused`,
			`primary sent [5-9] checkpoints`,
			`backup failed over: domain \d+ runs the guest from its last checkpoint`,
		}},
		{"custom-hooks", nil, 0, []string{
			`PreSuspend:  flushing domain \d+`,
			`PostSuspend: domain \d+ is suspended`,
			`PreResume:   domain \d+ about to resume`,
			`checkpoint done: \d+ pages`,
		}},
		{"custom-hooks", []string{"-fail"}, 1, []string{
			`(?s)checkpoint aborted: .*storage backend refused to quiesce`,
			`guest never suspended: 0 suspends, state running`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bin := build(t, "./examples/"+tc.name)
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, bin, tc.args...).CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tc.code, code, "%s", out)
			for _, w := range tc.want {
				assert.Regexp(t, regexp.MustCompile(w), string(out))
			}
		})
	}
}
