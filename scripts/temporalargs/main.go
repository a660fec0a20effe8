// Command temporalargs reads temporal-dev.yaml, validates it and prints what
// scripts/temporal.sh needs, one item per line:
//
//	temporalargs [-config FILE] [-root DIR] args   # flags for `temporal server start-dev`
//	temporalargs [-config FILE] [-root DIR] env    # key=value settings for the script
//
// temporal-dev.yaml stays the single source of the dev server settings; this
// program only parses it strictly (unknown keys are errors) and quotes values,
// so that the shell script never has to parse YAML.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
)

// Config mirrors temporal-dev.yaml.
type Config struct {
	IP               string            `yaml:"ip"`
	Port             int               `yaml:"port"`
	UIPort           int               `yaml:"uiPort"`
	Namespace        string            `yaml:"namespace"`
	DBFilename       string            `yaml:"dbFilename"`
	SQLitePragmas    map[string]any    `yaml:"sqlitePragmas"`
	LogLevel         string            `yaml:"logLevel"`
	SearchAttributes map[string]string `yaml:"searchAttributes"`
	DynamicConfig    map[string]any    `yaml:"dynamicConfig"`
}

var (
	identRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	dynKeyRE   = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+$`)
	namespaceR = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	pragmaRE   = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	// A pragma value goes into the SQLite URI (_pragma=NAME=VALUE) and from
	// there into `PRAGMA NAME=VALUE`: a keyword or a (negative) integer.
	pragmaValRE = regexp.MustCompile(`^(-?[0-9]+|[A-Za-z][A-Za-z0-9_]*)$`)
	// SQLite URI parameters that the server's sqlite plugin passes on as URI
	// parameters rather than as pragmas (go.temporal.io/server
	// common/persistence/sql/sqlplugin/sqlite/plugin.go, queryParameters);
	// "mode" and "cache" are set by the CLI itself. They are not pragmas.
	sqliteURIParams = []string{"cache", "immutable", "mode", "modeof", "nolock", "psow", "setup", "vfs"}
	logLevels       = []string{"debug", "info", "warn", "error", "never"}
	// Search attribute types accepted by the CLI, in their canonical spelling.
	saTypes = []string{"Text", "Keyword", "Int", "Double", "Bool", "Datetime", "KeywordList"}
)

func main() {
	configPath := flag.String("config", "", "path to temporal-dev.yaml (default: ROOT/temporal-dev.yaml)")
	root := flag.String("root", ".", "repository root; relative paths in the file are relative to it")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: %s [-config FILE] [-root DIR] args|env\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 || (flag.Arg(0) != "args" && flag.Arg(0) != "env") {
		flag.Usage()
		os.Exit(2)
	}
	absRoot, err := filepath.Abs(*root)
	if err != nil {
		fail(err)
	}
	if *configPath == "" {
		*configPath = filepath.Join(absRoot, "temporal-dev.yaml")
	}
	cfg, err := load(*configPath)
	if err != nil {
		fail(fmt.Errorf("%s: %w", *configPath, err))
	}
	if cfg.DBFilename != "" && !filepath.IsAbs(cfg.DBFilename) {
		cfg.DBFilename = filepath.Join(absRoot, cfg.DBFilename)
	}

	var lines []string
	switch flag.Arg(0) {
	case "args":
		lines, err = startDevArgs(cfg)
	case "env":
		lines = envLines(cfg)
	}
	if err != nil {
		fail(fmt.Errorf("%s: %w", *configPath, err))
	}
	for _, l := range lines {
		if strings.ContainsAny(l, "\n\r\x00") {
			fail(fmt.Errorf("%s: value %q contains a newline or NUL", *configPath, l))
		}
	}
	fmt.Println(strings.Join(lines, "\n"))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "temporalargs:", err)
	os.Exit(1)
}

func load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cfg Config
	if err := yaml.UnmarshalWithOptions(data, &cfg, yaml.Strict()); err != nil {
		return nil, err
	}
	return &cfg, validate(&cfg)
}

func validate(c *Config) error {
	var errs []error
	if net.ParseIP(c.IP) == nil {
		errs = append(errs, fmt.Errorf("ip: %q is not an IP address", c.IP))
	}
	if c.Port < 1 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("port: %d is not a TCP port", c.Port))
	}
	if c.UIPort < 0 || c.UIPort > 65535 || (c.UIPort != 0 && c.UIPort == c.Port) {
		errs = append(errs, fmt.Errorf("uiPort: %d is not a usable TCP port", c.UIPort))
	}
	if c.Namespace == "" {
		c.Namespace = "default"
	}
	if !namespaceR.MatchString(c.Namespace) {
		errs = append(errs, fmt.Errorf("namespace: %q is not a valid namespace name", c.Namespace))
	}
	if c.LogLevel == "" {
		c.LogLevel = "warn"
	}
	if !slices.Contains(logLevels, c.LogLevel) {
		errs = append(errs, fmt.Errorf("logLevel: %q is not one of %s", c.LogLevel, strings.Join(logLevels, ", ")))
	}
	for name, typ := range c.SearchAttributes {
		if !identRE.MatchString(name) {
			errs = append(errs, fmt.Errorf("searchAttributes: %q is not an identifier", name))
		}
		canon := ""
		for _, t := range saTypes {
			if strings.EqualFold(t, typ) {
				canon = t
			}
		}
		if canon == "" {
			errs = append(errs, fmt.Errorf("searchAttributes.%s: type %q is not one of %s", name, typ, strings.Join(saTypes, ", ")))
		}
		c.SearchAttributes[name] = canon
	}
	for name, v := range c.SQLitePragmas {
		val, err := pragmaValue(v)
		switch {
		case !pragmaRE.MatchString(name):
			errs = append(errs, fmt.Errorf("sqlitePragmas: %q is not a pragma name (lower case, like journal_mode)", name))
		case slices.Contains(sqliteURIParams, name):
			errs = append(errs, fmt.Errorf("sqlitePragmas: %q is an SQLite URI parameter, not a pragma", name))
		case err != nil:
			errs = append(errs, fmt.Errorf("sqlitePragmas.%s: %w", name, err))
		default:
			c.SQLitePragmas[name] = val
		}
	}
	for key := range c.DynamicConfig {
		if !dynKeyRE.MatchString(key) {
			errs = append(errs, fmt.Errorf("dynamicConfig: %q is not a dynamic config key (like system.someSetting)", key))
		}
	}
	return errors.Join(errs...)
}

// pragmaValue renders a YAML scalar as a pragma value. YAML may read an
// unquoted off/on as a boolean; SQLite accepts off/on for those pragmas.
func pragmaValue(v any) (string, error) {
	var s string
	switch t := v.(type) {
	case string:
		s = t
	case bool:
		s = map[bool]string{false: "off", true: "on"}[t]
	case int, int64, uint64:
		s = fmt.Sprint(t)
	default:
		return "", fmt.Errorf("value %v is not a keyword or an integer", v)
	}
	if !pragmaValRE.MatchString(s) {
		return "", fmt.Errorf("value %q is not a keyword or an integer", s)
	}
	return s, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// jsonValue encodes a YAML value as the JSON the CLI expects for
// --dynamic-config-value (maps decoded from YAML have string keys already,
// but nested ones may be map[any]any; normalise them).
func jsonValue(v any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(normalise(v)); err != nil {
		return "", err
	}
	return strings.TrimSpace(buf.String()), nil
}

func normalise(v any) any {
	switch t := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, val := range t {
			m[fmt.Sprint(k)] = normalise(val)
		}
		return m
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, val := range t {
			m[k] = normalise(val)
		}
		return m
	case []any:
		out := make([]any, len(t))
		for i, val := range t {
			out[i] = normalise(val)
		}
		return out
	default:
		return v
	}
}

func startDevArgs(c *Config) ([]string, error) {
	args := []string{
		"--ip", c.IP,
		"--port", strconv.Itoa(c.Port),
		"--log-level", c.LogLevel,
	}
	if c.UIPort != 0 {
		args = append(args, "--ui-port", strconv.Itoa(c.UIPort))
	}
	if c.Namespace != "default" {
		// "default" is always created; naming it again is redundant.
		args = append(args, "--namespace", c.Namespace)
	}
	if c.DBFilename != "" {
		args = append(args, "--db-filename", c.DBFilename)
	}
	for _, name := range sortedKeys(c.SQLitePragmas) {
		args = append(args, "--sqlite-pragma", name+"="+c.SQLitePragmas[name].(string))
	}
	for _, name := range sortedKeys(c.SearchAttributes) {
		args = append(args, "--search-attribute", name+"="+c.SearchAttributes[name])
	}
	for _, key := range sortedKeys(c.DynamicConfig) {
		val, err := jsonValue(c.DynamicConfig[key])
		if err != nil {
			return nil, fmt.Errorf("dynamicConfig.%s: %w", key, err)
		}
		args = append(args, "--dynamic-config-value", key+"="+val)
	}
	return args, nil
}

func envLines(c *Config) []string {
	lines := []string{
		"ip=" + c.IP,
		"port=" + strconv.Itoa(c.Port),
		"ui_port=" + strconv.Itoa(c.UIPort),
		"namespace=" + c.Namespace,
		"db_filename=" + c.DBFilename,
		"log_level=" + c.LogLevel,
	}
	for _, name := range sortedKeys(c.SearchAttributes) {
		lines = append(lines, "search_attribute="+name+"="+c.SearchAttributes[name])
	}
	return lines
}
