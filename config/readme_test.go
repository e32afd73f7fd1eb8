package config_test

import (
	"os"
	"strings"
	"testing"

	"github.com/walletauth/walletauth/config"
)

// The README's configuration table must list every setting Load reads.
func TestREADMEDocumentsEverySetting(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range config.Settings() {
		if !strings.Contains(string(b), "`"+config.Prefix+s.Name+"`") {
			t.Errorf("README.md does not document %s%s", config.Prefix, s.Name)
		}
	}
}
