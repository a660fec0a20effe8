package llm

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/testkit/fakellm"
	"github.com/konstruct/konstruct/internal/testkit/testimage"
)

// Each provider sends a user message's images in its vendor's wire format,
// before the text: OpenAI content parts with an image_url data URL,
// Anthropic image blocks with a base64 source, Ollama's images array.
func TestProviderSendsImages(t *testing.T) {
	png, jpeg := testimage.PNG(8, 8, 1), testimage.JPEG(8, 8, 2)
	b64png := base64.StdEncoding.EncodeToString(png)
	wireShape := map[fakellm.Wire][]string{
		fakellm.OpenAI:    {`"type":"image_url"`, `"url":"data:image/png;base64,` + b64png + `"`, `"detail":"auto"`, `"type":"text"`},
		fakellm.Anthropic: {`"type":"image"`, `"source":{`, `"media_type":"image/png"`, `"type":"base64"`, `"data":"` + b64png + `"`},
		fakellm.Ollama:    {`"images":["` + b64png + `","`},
	}
	for _, pc := range providerCases {
		t.Run(pc.name, func(t *testing.T) {
			s := fakellm.New(t, fakellm.WithHandler(func(r fakellm.Request) fakellm.Reply {
				return fakellm.Text("I see " + string(rune('0'+len(r.Images()))) + " images")
			}))
			req := Request{System: "be brief", Messages: []Message{
				{Role: RoleUser, Content: "earlier"},
				{Role: RoleAssistant, Content: "ok"},
				{Role: RoleUser, Content: "what is on these?", Images: []Image{
					{MimeType: "image/png", Data: png}, {MimeType: "image/jpeg", Data: jpeg}}},
			}}
			resp, err := pc.build(s).Complete(context.Background(), pc.model, req)
			require.NoError(t, err)
			require.Equal(t, "I see 2 images", resp.Content)

			got := s.Requests()[0]
			require.Len(t, got.Messages, 3)
			last := got.Messages[2]
			require.Equal(t, "what is on these?", last.Content, "the text travels with the images")
			require.Len(t, last.Images, 2)
			require.Equal(t, png, last.Images[0].Data)
			require.Equal(t, "image/png", last.Images[0].MimeType)
			require.Equal(t, jpeg, last.Images[1].Data)
			require.Equal(t, "image/jpeg", last.Images[1].MimeType)
			require.Empty(t, got.Messages[0].Images, "only the message that carries images has them")

			for _, want := range wireShape[pc.wire] {
				require.Contains(t, string(got.Body), want)
			}
			if pc.wire != fakellm.Ollama {
				// Images come before the text in the message's content.
				require.Less(t, bytes.Index(got.Body, []byte(b64png)), bytes.Index(got.Body, []byte("what is on these?")))
			}
			// The fake counts images in the input tokens.
			require.GreaterOrEqual(t, resp.Usage.InputTokens, 2*fakellm.ImageTokens)
		})
	}
}

// An image-only message (no text) is a valid request in every wire format.
func TestProviderSendsImageWithoutText(t *testing.T) {
	for _, pc := range providerCases {
		t.Run(pc.name, func(t *testing.T) {
			s := fakellm.New(t)
			_, err := pc.build(s).Complete(context.Background(), pc.model, Request{Messages: []Message{
				{Role: RoleUser, Images: []Image{{MimeType: "image/gif", Data: testimage.GIF(4, 4, 3)}}}}})
			require.NoError(t, err)
			require.Len(t, s.Requests()[0].Images(), 1)
		})
	}
}

// The fake refuses what the vendors refuse, so the client is tested against
// it: bytes that are not the declared type.
func TestFakeRefusesMislabelledImage(t *testing.T) {
	for _, pc := range providerCases {
		if pc.wire == fakellm.Ollama {
			continue // Ollama takes no declared type
		}
		t.Run(pc.name, func(t *testing.T) {
			s := fakellm.New(t)
			_, err := pc.build(s).Complete(context.Background(), pc.model, Request{Messages: []Message{
				{Role: RoleUser, Content: "hi", Images: []Image{{MimeType: "image/png", Data: testimage.JPEG(4, 4, 1)}}}}})
			require.Error(t, err)
			require.Equal(t, KindRequest, KindOf(err))
		})
	}
}

func TestSupportsVision(t *testing.T) {
	see := []string{
		"openai/gpt-4o", "openai/gpt-4o-mini", "openai/gpt-4o-2024-08-06", "openai/chatgpt-4o-latest",
		"openai/gpt-4.1", "openai/gpt-4.1-mini", "openai/gpt-4.1-nano", "openai/gpt-4-turbo", "openai/gpt-5",
		"openai/gpt-5-mini", "openai/gpt-5-nano", "openai/o1", "openai/o3", "openai/o4-mini",
		"anthropic/claude-3-opus-20240229", "anthropic/claude-3-haiku-20240307", "anthropic/claude-3-5-sonnet-latest",
		"anthropic/claude-3-7-sonnet-20250219", "anthropic/claude-sonnet-4-5", "anthropic/claude-opus-4-1",
		"anthropic/claude-haiku-4-5", "anthropic/claude-sonnet-4-20250514",
		"ollama/llava", "ollama/llava:13b", "ollama/llama3.2-vision", "ollama/llama3.2-vision:90b", "ollama/qwen2.5vl:7b",
		"ollama/gemma3", "ollama/gemma3:12b", "ollama/gemma3:4b-it-qat", "ollama/minicpm-v", "ollama/moondream",
	}
	blind := []string{
		"openai/gpt-3.5-turbo", "openai/o1-mini", "openai/o1-preview", "openai/o3-mini", "openai/gpt-4o-audio-preview",
		"openai/gpt-4o-realtime-preview", "openai/text-embedding-3-small", "openai/my-finetune",
		"anthropic/claude-3-5-haiku-20241022", "anthropic/claude-2.1", "anthropic/claude-instant-1.2",
		"ollama/llama3.2", "ollama/llama3.1:8b", "ollama/gemma3:1b", "ollama/gemma3:270m", "ollama/gemma3n:e4b",
		"ollama/mistral", "other/gpt-4o", "gpt-4o",
	}
	for _, m := range see {
		require.True(t, SupportsVision(m), m)
	}
	for _, m := range blind {
		require.False(t, SupportsVision(m), m)
	}
	require.Equal(t, []string{"openai/gpt-4o", "ollama/llava"},
		VisionModels([]string{"ollama/llama3.2", "openai/gpt-4o", "openai/gpt-3.5-turbo", "ollama/llava"}))
}

// The pool never sends an image to a model that cannot see (the vendor
// would refuse the whole request and stop the chain): it sends the image's
// text in its place, and the image to the models that can.
func TestPoolGivesBlindModelsTheImageText(t *testing.T) {
	r := newRig(t, PoolConfig{})
	r.fake.SetBlind("gpt-3.5-turbo", "llama3.2")
	r.on(fakellm.OpenAI, func(req fakellm.Request) fakellm.Reply {
		if req.Model == "gpt-4o" {
			return fakellm.Fail(http.StatusServiceUnavailable, "overloaded")
		}
		return fakellm.Text("ok")
	})
	img := Image{MimeType: "image/png", Data: testimage.PNG(4, 4, 9), Text: "[image: a red square]"}
	req := Request{Messages: []Message{{Role: RoleUser, Content: "what is it?", Images: []Image{img}}}}

	// gpt-4o can see (and is down); gpt-3.5-turbo cannot and answers from the text.
	resp, err := r.pool.Complete(context.Background(), []string{"openai/gpt-4o", "openai/gpt-3.5-turbo"}, req)
	require.NoError(t, err)
	require.Equal(t, "gpt-3.5-turbo", resp.Model)
	reqs := r.fake.Requests()
	require.Len(t, reqs, 2)
	require.Len(t, reqs[0].Images(), 1, "the vision model got the image")
	require.Empty(t, reqs[1].Images(), "the blind model got none")
	require.Equal(t, "[image: a red square]\nwhat is it?", reqs[1].LastUserText())
	require.Len(t, req.Messages[0].Images, 1, "the caller's request is not changed")

	// Without a description, the blind model is told an image was left out.
	r.fake.Reset()
	img.Text = ""
	_, err = r.pool.Complete(context.Background(), []string{"ollama/llama3.2"},
		Request{Messages: []Message{{Role: RoleUser, Images: []Image{img}}}})
	require.NoError(t, err)
	require.Contains(t, r.fake.Requests()[0].LastUserText(), "which you cannot see")
	require.Empty(t, r.fake.Requests()[0].Images())
}

func TestImagesCountInTheBudget(t *testing.T) {
	m := Message{Role: RoleUser, Content: "hi", Images: []Image{{}, {}}}
	require.Equal(t, MessageOverhead+EstimateTokens("hi")+2*ImageTokens, EstimateMessageTokens(m))
}
