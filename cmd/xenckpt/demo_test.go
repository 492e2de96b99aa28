package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDemoJSON(t *testing.T) {
	r := xenckpt(t, t.Context(), "demo", "--json", "--guest-mem", "8", "--epochs", "4")
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	m := jsonOf(t, r)
	assert.Equal(t, true, m["ok"])
	steps := m["steps"].([]any)
	var names []string
	byName := map[string]map[string]any{}
	for _, s := range steps {
		st := s.(map[string]any)
		names = append(names, st["name"].(string))
		byName[st["name"].(string)] = st
		assert.Equal(t, true, st["ok"], "%s: %v", st["name"], st["error"])
	}
	assert.Equal(t, []string{"boot", "capabilities", "checkpoint-seed", "checkpoint-linux", "checkpoint-legacy",
		"save-restore", "live-migration", "cut-migration", "remus"}, names)
	assert.Equal(t, 0.0, byName["checkpoint-seed"]["suspend_return"], "seed cancel writes 0")
	assert.Equal(t, 1.0, byName["checkpoint-linux"]["suspend_return"], "upstream cancel writes 1")
	assert.Equal(t, "seed", byName["checkpoint-seed"]["convention"])
	assert.Equal(t, "upstream", byName["checkpoint-linux"]["convention"])
	assert.Positive(t, byName["save-restore"]["suspend_return"], "a restored seed guest sees a positive value")
	assert.Equal(t, true, byName["cut-migration"]["source_running"])
	assert.Equal(t, 0.0, byName["cut-migration"]["domains_left"])
	assert.NotEmpty(t, byName["cut-migration"]["error"])
	assert.Equal(t, false, byName["live-migration"]["source_running"])
	assert.Equal(t, true, byName["remus"]["guest_running"])
	assert.GreaterOrEqual(t, byName["remus"]["checkpoints"], 4.0)
	assert.Len(t, byName["remus"]["epoch_pauses_ms"], int(byName["remus"]["checkpoints"].(float64)))
}

func TestDemoText(t *testing.T) {
	r := xenckpt(t, t.Context(), "demo", "--guest-mem", "4", "--epochs", "2")
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	assert.Contains(t, r.stdout, "9. [ok  ] remus")
	assert.Contains(t, r.stdout, "every step behaved as expected")
}
