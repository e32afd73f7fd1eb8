package config_test

import (
	"os"
	"strings"
	"testing"

	"github.com/walletauth/walletauth/config"
)

// The configuration table (docs/configuration.md) must list every setting Load reads.
func TestConfigDocsListEverySetting(t *testing.T) {
	b, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range config.Settings() {
		if !strings.Contains(string(b), "`"+config.Prefix+s.Name+"`") {
			t.Errorf("docs/configuration.md does not document %s%s", config.Prefix, s.Name)
		}
	}
}
