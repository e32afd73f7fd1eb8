package api

import (
	"errors"
	"strings"
	"testing"
)

// Decode takes exactly one JSON value and says what is wrong otherwise.
func TestDecode(t *testing.T) {
	type body struct {
		Name  string `json:"name"`
		Count int    `json:"count"`
	}
	for _, tc := range []struct {
		in, wantMsg string // wantMsg "": no error
		want        body
	}{
		{in: `{"name":"a","count":2}`, want: body{Name: "a", Count: 2}},
		{in: " \n{\"name\":\"a\"}\t ", want: body{Name: "a"}},
		{in: `{"name":"a","extra":[1,{"x":null}]}`, want: body{Name: "a"}},
		{in: ``, wantMsg: "the request body is empty"},
		{in: `   `, wantMsg: "the request body is empty"},
		{in: `{"name":"a"} {"name":"b"}`, wantMsg: "more than one JSON value"},
		{in: `{"name":"a"} x`, wantMsg: "more than one JSON value"},
		{in: `{"name":"a"}]`, wantMsg: "trailing data"},
		{in: `{"count":"2"}`, wantMsg: `field "count" has the wrong type`},
		{in: `{"name":`, wantMsg: "not valid JSON"},
		{in: `[1]`, wantMsg: "not valid JSON"},
	} {
		var got body
		err := Decode([]byte(tc.in), &got)
		if tc.wantMsg == "" {
			if err != nil || got != tc.want {
				t.Errorf("Decode(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
			continue
		}
		var e *Error
		if !errors.As(err, &e) || !errors.Is(err, ErrInvalidJSON) || !strings.Contains(e.Message, tc.wantMsg) {
			t.Errorf("Decode(%q) = %v; want invalid_json saying %q", tc.in, err, tc.wantMsg)
		}
	}
}
