package workflows

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// Every committed history must replay on the current code. A change that
// breaks this must ship behind workflow.GetVersion (and add a new history).
// New histories are recorded by the e2e test TestRecordConversationHistory
// with KONSTRUCT_UPDATE_HISTORY=1.
func TestReplayCommittedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no committed histories in workflows/testdata")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			require.NoError(t, Replay(b))
		})
	}
}
