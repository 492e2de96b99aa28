package xenstore_test

import (
	"testing"

	"github.com/xenckpt/xenckpt/xenstore/internal/conformance"
	"github.com/xenckpt/xenckpt/xenstore/internal/xsdaemon"
)

func TestIntegrationConformanceCXenstored(t *testing.T) {
	d := xsdaemon.StartCXenstored(t)
	conformance.Run(t, conformance.Target{Kind: conformance.CXenstored, Dial: d.Dial})
}

func TestIntegrationConformanceOXenstored(t *testing.T) {
	d := xsdaemon.StartOXenstored(t)
	conformance.Run(t, conformance.Target{Kind: conformance.OXenstored, Dial: d.Dial})
}
