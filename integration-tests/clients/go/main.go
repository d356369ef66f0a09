// A Go backend's use of Touchstone through connectrpc.com/connect, with no generated code:
// the methods are read from the API's descriptor set, messages are dynamic (dynamicpb).
// Usage: go run . BASE_URL DESCRIPTORS API_KEY CA_PEM
// Prints one JSON object: what was acknowledged and a campaign's stats (proto3 JSON).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

func main() {
	if err := run(os.Args[1], os.Args[2], os.Args[3], os.Args[4]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(baseURL, descriptors, apiKey, caPem string) error {
	raw, err := os.ReadFile(descriptors)
	if err != nil {
		return err
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(raw, &set); err != nil {
		return err
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		return err
	}
	pem, err := os.ReadFile(caPem)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	httpClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}

	// call sends `request` (proto3 JSON) to service.method and answers its reply as JSON.
	call := func(service, method, request string) (string, error) {
		found, err := files.FindDescriptorByName(protoreflect.FullName("touchstone.v1." + service))
		if err != nil {
			return "", err
		}
		md := found.(protoreflect.ServiceDescriptor).Methods().ByName(protoreflect.Name(method))
		client := connect.NewClient[dynamicpb.Message, dynamicpb.Message](
			httpClient,
			fmt.Sprintf("%s/touchstone.v1.%s/%s", baseURL, service, method),
			connect.WithSchema(md),
			connect.WithProtoJSON(),
			connect.WithResponseInitializer(func(_ connect.Spec, message any) error {
				*message.(*dynamicpb.Message) = *dynamicpb.NewMessage(md.Output())
				return nil
			}),
		)
		input := dynamicpb.NewMessage(md.Input())
		if err := protojson.Unmarshal([]byte(request), input); err != nil {
			return "", err
		}
		req := connect.NewRequest(input)
		req.Header().Set("Authorization", "Bearer "+apiKey)
		res, err := client.CallUnary(context.Background(), req)
		if err != nil {
			return "", fmt.Errorf("%s/%s: %w", service, method, err)
		}
		out, err := protojson.Marshal(res.Msg)
		return string(out), err
	}

	out := map[string]json.RawMessage{}
	steps := []struct{ key, service, method, request string }{
		{"goal", "ConfigService", "CreateGoal", `{"tenant": "shop", "goal": {"id": "checkin", "kind": "GOAL_KIND_EVENT", "eventName": "checkin"}}`},
		{"messages", "IngestService", "RegisterMessages", `{"messages": [{"tenant": "shop", "msgHash": "m1", "campaignId": "spring", "channel": "CHANNEL_PUSH", "sentAt": "1767225600000"}]}`},
		{"touches", "IngestService", "RecordTouches", `{"touches": [{"tenant": "shop", "eventId": "t1", "msgHash": "m1", "customerId": "ann", "touch": "TOUCH_KIND_OPENED", "ts": "1767225600000"}]}`},
		{"events", "IngestService", "PostEvents", `{"events": [{"tenant": "shop", "eventId": "e1", "customerId": "ann", "name": "checkin", "ts": "1767225660000", "msgHash": "m1"}]}`},
	}
	for _, step := range steps {
		reply, err := call(step.service, step.method, step.request)
		if err != nil {
			return err
		}
		out[step.key] = json.RawMessage(reply)
	}
	// Reports lag attribution by a moment: a campaign is known once its message is
	// attributed, so NOT_FOUND is asked again a little later (the Rust side also waits for
	// attribution, then asks again through us).
	var stats string
	for attempt := 0; ; attempt++ {
		stats, err = call("QueryService", "GetCampaignStats", `{"tenant": "shop", "campaignId": "spring"}`)
		if err == nil || connect.CodeOf(err) != connect.CodeNotFound || attempt == 100 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	out["stats"] = json.RawMessage(stats)
	// A bad request: the code and the field the server names.
	_, err = call("QueryService", "GetGoalKpis", `{"tenant": "shop", "range": {"fromMs": "9", "toMs": "1"}}`)
	var connectErr *connect.Error
	if errors.As(err, &connectErr) {
		out["bad_request_code"] = json.RawMessage(fmt.Sprintf("%q", connectErr.Code().String()))
	}
	encoded, err := json.Marshal(out)
	if err != nil {
		return err
	}
	fmt.Println(string(encoded))
	return nil
}
