package magic

// Test-only access for the external tests.
var (
	BuildTestELF      = buildTestELF
	StandardTestNotes = standardTestNotes
)

type (
	TestNote       = testNote
	TestELFOptions = testELFOptions
)
