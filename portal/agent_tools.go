package portal

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/designer"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/tools/httptool"
)

// The agent's tools: every built-in tool and the agent's declared HTTP tools,
// each with the JSON schema the model sees, and a form to declare one.

type toolView struct {
	designer.AgentTool
	Schema  string // pretty-printed
	Headers []string
}

type agentToolsData struct {
	Agent store.Agent
	Tools []toolView
}

func prettyJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return string(raw)
	}
	return b.String()
}

func (p *Portal) agentTools(c *gin.Context) {
	p.renderAgentTools(c, http.StatusOK, nil)
}

func (p *Portal) renderAgentTools(c *gin.Context, status int, form *Form) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	a, ok := p.loadAgent(c, tenant)
	if !ok {
		return
	}
	list, err := p.d.Designer.AgentTools(c.Request.Context(), tenant.ID, a.ID)
	if err != nil {
		p.fail(c, err)
		return
	}
	d := agentToolsData{Agent: a}
	for _, t := range list {
		v := toolView{AgentTool: t, Schema: prettyJSON(t.Parameters)}
		if t.HTTP != nil {
			v.Headers = t.HTTP.HeaderNames
		}
		d.Tools = append(d.Tools, v)
	}
	base := "/t/" + tenant.ID.String() + "/agents"
	p.render(c, status, "agents/tools", &Page{Title: "Tools of " + a.Name, Section: "agents", Tenant: tenant, Form: form,
		Crumbs: []Crumb{{"Agents", base}, {a.Name, base + "/" + a.ID.String()}, {"Tools", ""}}, Data: d})
}

// parseHeaders reads "Name: value" lines.
func parseHeaders(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return nil, errors.New("write one header per line as Name: value")
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out, nil
}

func (p *Portal) agentToolCreate(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	id, ok := pathUUID(c, "agent_id")
	if !ok {
		p.notFoundPage(c)
		return
	}
	values := map[string]string{}
	for _, k := range []string{"name", "description", "method", "url_template", "headers", "parameters", "side_effects", "timeout_ms"} {
		values[k] = c.PostForm(k)
	}
	var extra apperr.Fields
	d := httptool.Declaration{Name: values["name"], Description: values["description"], Method: values["method"],
		URLTemplate: values["url_template"], SideEffects: values["side_effects"] == "on", Enabled: true}
	if strings.TrimSpace(values["parameters"]) != "" {
		d.Parameters = json.RawMessage(values["parameters"])
		if !json.Valid(d.Parameters) {
			extra.Add("parameters", "is not valid JSON")
		}
	}
	if h, err := parseHeaders(values["headers"]); err != nil {
		extra.Add("headers", err.Error())
	} else {
		d.Headers = h
	}
	if v := strings.TrimSpace(values["timeout_ms"]); v != "" {
		ms, err := strconv.Atoi(v)
		if err != nil {
			extra.Add("timeout_ms", "must be a whole number of milliseconds")
		} else {
			d.Timeout = time.Duration(ms) * time.Millisecond
			if ms <= 0 {
				d.Timeout = -1
			}
		}
	}
	var err error
	if len(extra) == 0 {
		_, err = p.d.Designer.CreateHTTPTool(c.Request.Context(), viewerOf(c).Principal, tenant.ID, id, d)
	}
	var fields apperr.Fields
	if errors.As(err, &fields) {
		extra = append(extra, fields...)
	}
	if len(extra) > 0 {
		values["headers"] = "" // header values are secrets: not echoed back into the page
		p.renderAgentTools(c, http.StatusUnprocessableEntity, &Form{Values: values, Errors: extra,
			Message: "Some fields need attention. Nothing was saved yet."})
		return
	}
	if err != nil {
		p.fail(c, err)
		return
	}
	p.back(c, "/t/"+tenant.ID.String()+"/agents/"+id.String()+"/tools", "success",
		"Declared "+strings.TrimSpace(d.Name)+". The agent can call it from its next turn.")
}

func (p *Portal) agentToolDelete(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	agentID, ok := pathUUID(c, "agent_id")
	if !ok {
		p.notFoundPage(c)
		return
	}
	toolID, ok := pathUUID(c, "tool_id")
	if !ok {
		p.notFoundPage(c)
		return
	}
	if err := p.d.Designer.DeleteHTTPTool(c.Request.Context(), viewerOf(c).Principal, tenant.ID, agentID, toolID); err != nil {
		p.fail(c, err)
		return
	}
	p.back(c, "/t/"+tenant.ID.String()+"/agents/"+agentID.String()+"/tools", "success", "The tool was deleted.")
}

// agentToolEnabled switches a declared tool on or off.
func (p *Portal) agentToolEnabled(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	agentID, ok := pathUUID(c, "agent_id")
	if !ok {
		p.notFoundPage(c)
		return
	}
	toolID, ok := pathUUID(c, "tool_id")
	if !ok {
		p.notFoundPage(c)
		return
	}
	on := c.PostForm("enabled") == "on"
	h, err := p.d.Designer.PatchHTTPTool(c.Request.Context(), viewerOf(c).Principal, tenant.ID, agentID, toolID,
		func(d *httptool.Declaration) error { d.Enabled = on; return nil })
	if err != nil {
		p.fail(c, err)
		return
	}
	msg := h.Name + " is off: the agent no longer sees it."
	if h.Enabled {
		msg = h.Name + " is on: the agent can call it from its next turn."
	}
	p.back(c, "/t/"+tenant.ID.String()+"/agents/"+agentID.String()+"/tools", "success", msg)
}
