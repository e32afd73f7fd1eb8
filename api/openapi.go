package api

import (
	_ "embed" // the OpenAPI document is embedded
	"encoding/json"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// The OpenAPI 3.1 document of the whole HTTP contract (openapi.yaml).
//
//go:embed openapi.yaml
var openAPIYAML []byte

// OpenAPIYAML returns the OpenAPI document as written.
func OpenAPIYAML() []byte {
	return append([]byte(nil), openAPIYAML...)
}

// OpenAPIJSON returns the OpenAPI document converted to JSON (served at
// GET /openapi.json).
func OpenAPIJSON() ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(openAPIYAML, &doc); err != nil {
		return nil, fmt.Errorf("api: openapi.yaml: %w", err)
	}
	v, err := jsonValue(doc)
	if err != nil {
		return nil, fmt.Errorf("api: openapi.yaml: %w", err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("api: openapi.yaml to JSON: %w", err)
	}
	return b, nil
}

// jsonValue turns YAML's maps (whose keys may be numbers, as response
// codes are) into JSON objects with string keys.
func jsonValue(v any) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			c, err := jsonValue(e)
			if err != nil {
				return nil, err
			}
			t[k] = c
		}
		return t, nil
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			c, err := jsonValue(e)
			if err != nil {
				return nil, err
			}
			out[fmt.Sprint(k)] = c
		}
		return out, nil
	case []any:
		for i, e := range t {
			c, err := jsonValue(e)
			if err != nil {
				return nil, err
			}
			t[i] = c
		}
		return t, nil
	}
	return v, nil
}
