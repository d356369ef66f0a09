//! The web console in a real browser: Debian's Chromium (installed by `.ci/run`), headless,
//! renders every page of the console of a `touchstone dev` holding generated data; the
//! figures each page shows (the formatted text and the exact value beside it) must equal
//! what the CLI's JSON says for the same tenant and range: the campaign list and its totals,
//! a campaign's messages, goal KPIs, a conversion's explanation, a customer's trophy case
//! and badge timeline. Pages are also measured as Chromium lays them out in a 1400x1000
//! window: charts shown at the size they are drawn, the explain page's time line labels
//! apart and its table within the window, the campaigns table's first column in place when
//! it scrolls. A page's own script also reads a campaign's stats over the Connect protocol
//! (the browser as an API client), as the CLI's. It saves a screenshot of each page (`TOUCHSTONE_SCREENSHOTS_DIR`, else
//! `target/console-screenshots`): the README's pictures are these.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use touchstone_core::currency::format_money;
use touchstone_core::model::parse_micros;
use touchstone_integration_tests::{Server, free_address, text, touchstone};

const TENANT: &str = "acme-shop";
const MEMBER: &str = "member-long-timeline";

fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".to_owned())
}

/// The page's DOM after Chromium has loaded it (scripts run).
fn dom(url: &str) -> String {
    let out = Command::new(chromium())
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=2000", "--dump-dom", url])
        .output()
        .unwrap_or_else(|err| panic!("running {} (Debian's chromium; .ci/run installs it): {err}", chromium()));
    assert!(out.status.success(), "chromium --dump-dom {url}: {}", text(&out.stderr));
    let page = text(&out.stdout);
    assert!(page.contains("Touchstone"), "{url} did not render the console: {page}");
    page
}

fn screenshot(url: &str, name: &str) {
    let dir = std::env::var_os("TOUCHSTONE_SCREENSHOTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{name}.png"));
    let out = Command::new(chromium())
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=2000", "--window-size=1400,1000"])
        .arg(format!("--screenshot={}", file.display()))
        .arg(url)
        .output()
        .unwrap();
    assert!(out.status.success() && file.exists(), "screenshot of {url}: {}", text(&out.stderr));
}

/// What `script` finds in the page as Chromium lays it out in a 1400x1000 window (the
/// screenshots' size). A harness page served here frames the page and runs `script` as the
/// body of a function of the framed `document`, printing the JSON it returns; Chromium runs
/// without its same-origin checks so that the harness, another origin, may read the frame.
fn measure(url: &str, script: &str) -> Value {
    let harness = format!(
        r#"<!doctype html><html><body style="margin:0"><iframe id="page" src="{url}" style="border:0;width:1400px;height:1000px"></iframe><pre id="measured"></pre>
<script>document.getElementById("page").addEventListener("load", () => {{
  const out = document.getElementById("measured");
  try {{ out.textContent = JSON.stringify((function (document) {{ {script} }})(document.getElementById("page").contentDocument)); }}
  catch (err) {{ out.textContent = JSON.stringify({{ error: String(err) }}); }}
}});</script></body></html>"#
    );
    in_chromium(&harness, url)
}

/// What a page's script calling `base` over the Connect protocol (`fetch`, JSON) gets back:
/// the browser as an API client.
fn browser_connect(base: &str, path: &str, request: &Value) -> Value {
    let harness = format!(
        r#"<!doctype html><html><body><pre id="measured"></pre>
<script>fetch("{base}{path}", {{ method: "POST", headers: {{ "Content-Type": "application/json" }}, body: JSON.stringify({request}) }})
  .then((answer) => answer.json())
  .then((json) => {{ document.getElementById("measured").textContent = JSON.stringify(json); }})
  .catch((err) => {{ document.getElementById("measured").textContent = JSON.stringify({{ error: String(err) }}); }});</script></body></html>"#
    );
    in_chromium(&harness, path)
}

/// Serves `harness` on a port of its own to headless Chromium (web security off, so its
/// script may reach the console on another port) and reads the JSON it leaves in
/// `<pre id="measured">`.
fn in_chromium(harness: &str, what: &str) -> Value {
    use std::io::{Read, Write};
    let harness = harness.to_owned();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let serving = {
        let done = done.clone();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                if done.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                // A connection Chromium opens and never uses must not hold up the next one.
                let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                let _ = stream.read(&mut [0; 8192]);
                let reply = format!("HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{harness}", harness.len());
                let _ = stream.write_all(reply.as_bytes());
            }
        })
    };
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium())
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1400,1000", "--virtual-time-budget=3000"])
        .args(["--disable-web-security", "--disable-site-isolation-trials"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("http://{address}/"))
        .output()
        .unwrap();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = std::net::TcpStream::connect(address);
    serving.join().unwrap();
    assert!(out.status.success(), "chromium measuring {what}: {}", text(&out.stderr));
    let page = text(&out.stdout);
    let json = page.split_once("<pre id=\"measured\">").and_then(|(_, rest)| rest.split_once("</pre>")).map(|(json, _)| unescape(json)).unwrap_or_default();
    let measured: Value = serde_json::from_str(&json).unwrap_or_else(|err| panic!("measuring {what} printed no JSON ({err}): {page}"));
    assert!(measured.get("error").is_none(), "measuring {what}: {measured}");
    measured
}

/// Each `<tag ...>` of `html`: its attributes' text, and the text up to the next tag.
fn tags<'a>(html: &'a str, tag: &str) -> Vec<(&'a str, &'a str)> {
    html.match_indices(&format!("<{tag} "))
        .map(|(at, _)| {
            let rest = &html[at..];
            let end = rest.find('>').unwrap_or(rest.len());
            let after = rest.get(end + 1..).unwrap_or_default();
            (&rest[..end], after.split('<').next().unwrap_or_default())
        })
        .collect()
}

/// An attribute's value in a tag's text (` name="value"`).
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let marker = format!(" {name}=\"");
    let at = tag.find(&marker)? + marker.len();
    tag[at..].split('"').next()
}

/// A numeric attribute's value.
fn attr_number(tag: &str, name: &str) -> f64 {
    attr(tag, name).and_then(|value| value.parse().ok()).unwrap_or_else(|| panic!("no number {name} in {tag}"))
}

/// Undoes the HTML escapes the console's templates write.
fn unescape(text: &str) -> String {
    text.replace("&#38;", "&").replace("&amp;", "&").replace("&#34;", "\"").replace("&quot;", "\"").replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">")
}

/// The chunks of `html` that start at each element carrying `attr="..."`, by its value.
fn blocks(html: &str, attr: &str) -> Vec<(String, String)> {
    let marker = format!("{attr}=\"");
    let starts: Vec<usize> = html.match_indices(&marker).map(|(at, _)| at).collect();
    starts
        .iter()
        .enumerate()
        .map(|(i, &at)| {
            let end = starts.get(i + 1).copied().unwrap_or(html.len());
            let chunk = &html[at + marker.len()..end];
            let value = chunk.split('"').next().unwrap_or_default();
            (unescape(value), chunk.to_owned())
        })
        .collect()
}

/// The `(data-raw, shown text)` of the element with `data-field="field"` in `html`.
fn field(html: &str, field: &str) -> (String, String) {
    let marker = format!("data-field=\"{field}\"");
    let at = html.find(&marker).unwrap_or_else(|| panic!("no {field} in {html}"));
    let rest = &html[at + marker.len()..];
    let raw = rest.split_once("data-raw=\"").map(|(_, after)| after.split('"').next().unwrap_or_default().to_owned()).unwrap_or_default();
    let shown = rest.split_once('>').map(|(_, after)| after.split('<').next().unwrap_or_default()).unwrap_or_default();
    (unescape(&raw), unescape(shown.trim()))
}

fn number(value: &Value) -> f64 {
    value.as_f64().unwrap_or_else(|| panic!("not a number: {value}"))
}

/// The same number, as the page's exact value and as the JSON's.
fn same(raw: &str, json: &Value, what: &str) {
    let page: f64 = raw.parse().unwrap_or_else(|_| panic!("{what}: page value {raw:?}"));
    assert_eq!(page, number(json), "{what}");
}

fn money(value: &Value, currency: &str) -> String {
    format_money(parse_micros(&value.to_string()).expect("a decimal"), currency)
}

fn cli_json(server: &Server, args: &[&str]) -> Value {
    let out = server.cli(args);
    assert!(out.status.success(), "touchstone {args:?}: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|err| panic!("touchstone {args:?} printed no JSON: {err}"))
}

#[test]
fn every_console_page_shows_the_figures_of_the_cli_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let generated = touchstone(["gen", &data.to_string_lossy()]);
    assert!(generated.status.success(), "{}", text(&generated.stderr));
    let http = free_address();
    let store = dir.path().join("store").to_string_lossy().into_owned();
    let server = Server::start(&["dev", "--listen", "127.0.0.1:0", "--data-dir", &store, "--http", &http]);
    for (what, file) in [("config", "config.json"), ("messages", "messages.jsonl")] {
        let imported = server.cli(&["import", what, &data.join(file).to_string_lossy()]);
        assert!(imported.status.success(), "{}", text(&imported.stderr));
    }
    let imported = server.cli(&["import", "records", &data.join("records.jsonl").to_string_lossy(), "--wait"]);
    assert!(imported.status.success(), "{}", text(&imported.stderr));
    let base = format!("http://{http}");
    let config: Value = serde_json::from_str(&std::fs::read_to_string(data.join("config.json")).unwrap()).unwrap();
    let currency = config["tenants"][TENANT]["currency"].as_str().unwrap_or("USD").to_owned();

    // Tenants and attribution status.
    let index = dom(&format!("{base}/"));
    assert!(index.contains(&format!("data-tenant=\"{TENANT}\"")), "{index}");
    assert_eq!(field(&index, "pending").0, "0", "imported with --wait: nothing pending");
    screenshot(&format!("{base}/"), "tenants");

    // Campaigns: opens on the last 30 days holding data; every row and the totals as the CLI says.
    let page = dom(&format!("{base}/t/{TENANT}/campaigns"));
    let range_at = page.find("data-from-ms=\"").expect("the range");
    let from = page[range_at + 14..].split('"').next().unwrap().to_owned();
    let to_at = page.find("data-to-ms=\"").unwrap();
    let to = page[to_at + 12..].split('"').next().unwrap().to_owned();
    assert_eq!(to.parse::<i64>().unwrap() - from.parse::<i64>().unwrap(), 30 * 86_400_000);
    let range = ["--tenant", TENANT, "--from", &from, "--to", &to, "--format", "json"];
    let campaigns = cli_json(&server, &[&["report", "campaigns"], &range[..]].concat());
    let rows: BTreeMap<String, String> = blocks(&page, "data-campaign").into_iter().collect();
    let listed: Vec<&Value> = campaigns.as_array().unwrap().iter().filter(|c| c["campaign_id"] != "").collect();
    assert!(!listed.is_empty(), "the generated data has campaign activity in its last 30 days");
    let mut revenue = 0.0;
    let mut purchases = 0.0;
    for campaign in &listed {
        let id = campaign["campaign_id"].as_str().unwrap();
        let row = rows.get(id).unwrap_or_else(|| panic!("campaign {id} is not on the page"));
        for counter in ["sent", "delivered", "opened", "clicked"] {
            same(&field(row, counter).0, &campaign[counter], &format!("{id} {counter}"));
        }
        for (goal_id, figures) in campaign["goals"].as_object().unwrap() {
            same(&field(row, &format!("conversions:{goal_id}")).0, &figures["conversions"], &format!("{id} {goal_id} conversions"));
            let (raw, shown) = field(row, &format!("value:{goal_id}"));
            same(&raw, &figures["value"], &format!("{id} {goal_id} value"));
            if goal_id == "orders" {
                assert_eq!(shown, money(&figures["value"], &currency), "{id}: money in major units");
                revenue += number(&figures["value"]);
                purchases += number(&figures["conversions"]);
            }
        }
    }
    same(&field(&page, "revenue").0, &serde_json::json!(revenue), "total revenue");
    assert_eq!(field(&page, "revenue").1, money(&serde_json::json!(revenue), &currency));
    same(&field(&page, "purchases").0, &serde_json::json!(purchases), "total purchases");
    screenshot(&format!("{base}/t/{TENANT}/campaigns"), "campaigns");
    // Every goal's columns make the table wider than the window: it scrolls in its wrapper,
    // and the campaign column stays in place.
    let table_at = page.find("id=\"campaigns\"").unwrap();
    let wrapper = &page[page[..table_at].rfind("<div").unwrap()..table_at];
    assert!(wrapper.starts_with("<div class=\"scroll\">"), "{wrapper}");
    let header = &page[table_at..];
    assert!(header[header.find("<th ").unwrap()..].starts_with("<th class=\"sticky\""), "the first column's title stays in place");
    for (id, row) in &rows {
        assert!(row[row.find("<td").unwrap()..].starts_with("<td class=\"sticky\">"), "{id}'s first cell stays in place: {row}");
    }
    let shown = measure(
        &format!("{base}/t/{TENANT}/campaigns"),
        "const table = document.getElementById('campaigns'); const wrapper = table.parentElement;
         const style = (element) => document.defaultView.getComputedStyle(element);
         const cells = [table.tHead.rows[0].cells[0], table.tBodies[0].rows[0].cells[0]];
         const before = cells.map((cell) => cell.getBoundingClientRect().left);
         wrapper.scrollLeft = wrapper.scrollWidth;
         return { overflow: style(wrapper).overflowX, position: style(cells[1]).position, wider: wrapper.scrollWidth - wrapper.clientWidth,
                  scrolled: wrapper.scrollLeft, before, after: cells.map((cell) => cell.getBoundingClientRect().left) };",
    );
    assert_eq!(shown["overflow"], "auto", "{shown}");
    assert_eq!(shown["position"], "sticky", "{shown}");
    assert!(number(&shown["wider"]) > 0.0 && number(&shown["scrolled"]) > 0.0, "the goals' columns run past a 1,400 px window: {shown}");
    // Within a pixel: the collapsed border's half sits outside the stuck cell.
    for (before, after) in shown["before"].as_array().unwrap().iter().zip(shown["after"].as_array().unwrap()) {
        assert!((number(before) - number(after)).abs() <= 1.0, "the campaign column scrolled away: {shown}");
    }
    // The range in words, and all time: what the CLI reports without a range.
    let label = field(&page, "range-label").1;
    assert!(label.ends_with(", the last 30 days with data") && label.contains(" – "), "{label}");
    let all_time = dom(&format!("{base}/t/{TENANT}/campaigns?from=all"));
    let everything = cli_json(&server, &["report", "campaigns", "--tenant", TENANT, "--format", "json"]);
    // A page's script reads a campaign's stats over the Connect protocol, as the CLI's.
    let request = serde_json::json!({"tenant": TENANT, "campaignId": "winter-sale-2026"});
    let stats = browser_connect(&base, "/touchstone.v1.QueryService/GetCampaignStats", &request);
    let row = everything.as_array().unwrap().iter().find(|row| row["campaign_id"] == "winter-sale-2026").expect("winter-sale-2026");
    let orders = stats["goals"].as_array().unwrap().iter().find(|goal| goal["goalId"] == "orders").expect("orders");
    assert_eq!(orders["conversions"], row["goals"]["orders"]["conversions"].to_string(), "{stats} against {row}");
    assert_eq!(stats["touches"]["sent"], row["sent"].to_string(), "{stats} against {row}");
    let all_revenue: f64 = everything.as_array().unwrap().iter().map(|row| number(&row["goals"]["orders"]["value"])).sum();
    same(&field(&all_time, "revenue").0, &serde_json::json!(all_revenue), "all-time revenue");
    assert!(!field(&all_time, "range-label").1.contains("last 30 days"), "all time is not the default range");

    // A campaign's page, followed from the list: its figures and its messages.
    let busiest = listed.iter().max_by(|a, b| number(&a["goals"]["orders"]["value"]).total_cmp(&number(&b["goals"]["orders"]["value"]))).unwrap();
    let campaign_id = busiest["campaign_id"].as_str().unwrap();
    let link = rows[campaign_id].split("href=\"").nth(1).unwrap().split('"').next().unwrap();
    let url = format!("{base}{}", unescape(link));
    let page = dom(&url);
    same(&field(&page, "sent").0, &busiest["sent"], "campaign sent");
    same(&field(&page, "conversions").0, &busiest["goals"]["orders"]["conversions"], "campaign conversions");
    assert_eq!(field(&page, "revenue").1, money(&busiest["goals"]["orders"]["value"], &currency));
    assert!(page.matches("<svg").count() >= 3, "three daily charts");
    // Charts drawn at the size they are shown, so that their text is the size it says: each
    // SVG as wide as its viewBox, no text under 11 px, and Chromium scales none of them.
    for (svg, _) in tags(&page, "svg") {
        let view_box: Vec<f64> = attr(svg, "viewBox").expect("a viewBox").split(' ').map(|n| n.parse().unwrap()).collect();
        assert_eq!((attr_number(svg, "width"), attr_number(svg, "height")), (view_box[2], view_box[3]), "{svg}");
    }
    for (text, label) in tags(&page, "text") {
        assert!(attr_number(text, "font-size") >= 11.0, "chart text {label:?}: {text}");
    }
    let shown = measure(&url, "return [...document.querySelectorAll('figure.chart svg')].map((svg) => [svg.getBoundingClientRect().width, svg.viewBox.baseVal.width]);");
    assert!(shown.as_array().unwrap().len() >= 3, "{shown}");
    for sizes in shown.as_array().unwrap() {
        assert!((number(&sizes[0]) - number(&sizes[1])).abs() < 0.5, "a chart shown at another size than drawn (shown, drawn): {sizes}");
    }
    // The charts' days: each as the CLI reports that day alone.
    let days = blocks(&page, "data-day");
    assert_eq!(days.len(), 30);
    let busiest_day = days.iter().max_by_key(|(_, row)| field(row, "sent").0.parse::<u64>().unwrap_or(0)).unwrap();
    for (day, row) in [&days[0], busiest_day] {
        let end = (day.parse::<i64>().unwrap() + 86_400_000).to_string();
        let one_day = cli_json(&server, &["report", "campaigns", "--tenant", TENANT, "--from", day, "--to", &end, "--format", "json"]);
        let campaign = one_day.as_array().unwrap().iter().find(|c| c["campaign_id"] == campaign_id);
        let zero = serde_json::json!(0);
        let sent = campaign.map_or(&zero, |c| &c["sent"]);
        same(&field(row, "sent").0, sent, &format!("{campaign_id} sent on {day}"));
        let revenue = campaign.map_or(&zero, |c| &c["goals"]["orders"]["value"]);
        same(&field(row, "revenue").0, revenue, &format!("{campaign_id} revenue on {day}"));
    }
    // All time: the charts start at the campaign's first day with data, and its days add
    // up to what the CLI reports for it without a range.
    let all_time_url = format!("{}?from=all", url.split('?').next().unwrap());
    let all_time_page = dom(&all_time_url);
    let all_days = blocks(&all_time_page, "data-day");
    assert!(all_days.len() > 30 && all_days.len() <= 400, "{} days", all_days.len());
    assert!(all_time_page.contains("id=\"days-note\""), "the page says which days it charts");
    assert_ne!(field(&all_days[0].1, "sent").0, "0", "the first day charted holds data");
    let all_sent: u64 = all_days.iter().map(|(_, row)| field(row, "sent").0.parse::<u64>().unwrap()).sum();
    let ever = everything.as_array().unwrap().iter().find(|row| row["campaign_id"] == campaign_id).expect("the campaign, all time");
    same(&all_sent.to_string(), &ever["sent"], &format!("{campaign_id} sent, all time, day by day"));
    let messages = cli_json(&server, &[&["report", "messages"], &range[..]].concat());
    let message_rows = blocks(&page, "data-msg-hash");
    assert!(!message_rows.is_empty());
    for (msg_hash, row) in &message_rows {
        let message = messages.as_array().unwrap().iter().find(|m| m["msg_hash"] == msg_hash.as_str());
        let message = message.unwrap_or_else(|| panic!("message {msg_hash} is not in the CLI's report"));
        same(&field(row, "sent").0, &message["sent"], &format!("{msg_hash} sent"));
        same(&field(row, "conversions").0, &message["goals"]["orders"]["conversions"], &format!("{msg_hash} conversions"));
    }
    // The campaign's credit under every model, per goal, as `report models` gives it.
    let models = cli_json(&server, &[&["report", "models"], &range[..]].concat());
    let expected: Vec<&Value> = models.as_array().unwrap().iter().filter(|row| row["campaign_id"] == campaign_id).collect();
    let model_rows: BTreeMap<String, String> = blocks(&page[page.find("id=\"models\"").expect("the models table")..], "data-goal").into_iter().collect();
    assert!(!expected.is_empty(), "{campaign_id} has credit under some model");
    assert_eq!(model_rows.len(), expected.len(), "a row per goal credited to {campaign_id}");
    for row in expected {
        let goal_id = row["goal_id"].as_str().unwrap();
        let shown = &model_rows[goal_id];
        for (model, figures) in row["models"].as_object().unwrap() {
            let cell = &shown[shown.find(&format!("data-model=\"{model}\"")).unwrap_or_else(|| panic!("{goal_id}: no {model}"))..];
            same(&field(cell, "conversions").0, &figures["conversions"], &format!("{campaign_id} {goal_id} {model} conversions"));
            same(&field(cell, "value").0, &figures["value"], &format!("{campaign_id} {goal_id} {model} value"));
        }
    }
    screenshot(&url, "campaign");

    // Goals: KPIs split by rule, and the daily series.
    // (Opened on the same default range as the campaigns.)
    let page = dom(&format!("{base}/t/{TENANT}/goals"));
    assert!(page.contains(&format!("data-from-ms=\"{from}\" data-to-ms=\"{to}\"")));
    let goals = cli_json(&server, &[&["report", "goals"], &range[..]].concat());
    let sections: BTreeMap<String, String> = blocks(&page, "data-goal").into_iter().collect();
    for goal in goals.as_array().unwrap() {
        let id = goal["goal_id"].as_str().unwrap();
        let section = sections.get(id).unwrap_or_else(|| panic!("goal {id} is not on the page"));
        let rules: BTreeMap<String, String> = blocks(section, "data-rule").into_iter().collect();
        for rule in ["explicit", "last_touch", "unattributed"] {
            same(&field(&rules[rule], "conversions").0, &goal[rule]["conversions"], &format!("{id} {rule} conversions"));
            same(&field(&rules[rule], "value").0, &goal[rule]["value"], &format!("{id} {rule} value"));
        }
    }
    assert!(page.contains("id=\"series\""), "the daily series");
    screenshot(&format!("{base}/t/{TENANT}/goals"), "goals");
    // All time: the series covers the days it may, not an error.
    let all_time_goals = dom(&format!("{base}/t/{TENANT}/goals?from=all"));
    assert!(all_time_goals.contains("id=\"series\"") && all_time_goals.contains("the last 400 days of the range"), "{all_time_goals}");

    // Explain: an order conversion of the range, as the CLI explains it.
    let records = std::fs::read_to_string(data.join("records.jsonl")).unwrap();
    let explanation = records
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|r| r["type"] == "order" && r["tenant"] == TENANT && r["status"] == "PAID" && r["msg_hash"].is_null())
        .find_map(|order| {
            let key = order["order_id"].as_str()?.to_owned();
            let out = server.cli(&["report", "explain", "--tenant", TENANT, "--goal", "orders", "--key", &key, "--format", "json"]);
            let explained: Value = serde_json::from_slice(&out.stdout).ok()?;
            (out.status.success() && explained["credited_msg_hash"] != "").then_some((key, explained))
        });
    let (key, explained) = explanation.expect("an order of the tenant credited by last touch");
    let url = format!("{base}/t/{TENANT}/explain?goal=orders&key={key}");
    let page = dom(&url);
    assert_eq!(field(&page, "decision").1, unescape(explained["decision"].as_str().unwrap()).trim());
    assert!(field(&page, "credited_msg_hash").1.contains(explained["credited_msg_hash"].as_str().unwrap()) || page.contains(explained["credited_msg_hash"].as_str().unwrap()));
    assert_eq!(field(&page, "rule").1, explained["rule"].as_str().unwrap().to_lowercase().replace('_', " "));
    let candidates = blocks(&page, "data-event-id");
    let expected = explained["candidates"].as_array().unwrap();
    assert_eq!(candidates.len(), expected.len(), "every candidate touch");
    for ((event_id, row), candidate) in candidates.iter().zip(expected) {
        assert_eq!(event_id, candidate["event_id"].as_str().unwrap());
        assert!(row.contains(&format!("data-verdict=\"{}\"", candidate["verdict"].as_str().unwrap().to_lowercase())), "{row}");
        assert!(row.contains("class=\"wrap\" data-field=\"reason\""), "the reason's cell wraps: {row}");
    }
    // The time line's labels: touches close in time (a message sent, delivered and opened
    // within minutes) must not write over each other. By the boxes their characters take,
    // row by row as the DOM places them...
    let wanted: Vec<String> = expected
        .iter()
        .map(|c| format!("{} {}", c["touch"].as_str().unwrap().to_lowercase(), c["msg_hash"].as_str().unwrap().chars().take(10).collect::<String>()))
        .collect();
    let touches_at = page.find("Candidate touches").expect("the time line");
    let svg = &page[touches_at..touches_at + page[touches_at..].find("</svg>").expect("the time line's SVG")];
    let labels: Vec<(f64, f64, f64)> = tags(svg, "text")
        .into_iter()
        .filter(|(_, label)| wanted.iter().any(|w| w == label.trim()))
        .map(|(tag, label)| {
            let x = attr_number(tag, "x");
            // Debian's sans-serif (DejaVu Sans) takes 0.55 to 0.61 em a character for these.
            (attr_number(tag, "y"), x, x + label.trim().chars().count() as f64 * 0.62 * attr_number(tag, "font-size"))
        })
        .collect();
    assert_eq!(labels.len(), wanted.len(), "a label per candidate touch: {svg}");
    for (i, a) in labels.iter().enumerate() {
        for b in labels[i + 1..].iter().filter(|b| b.0 == a.0) {
            assert!(a.2 <= b.1 || b.2 <= a.1, "time line labels overlap on a row (y, from, to): {a:?} {b:?}");
        }
    }
    // ...and by the boxes Chromium draws them in, which must also lie inside the chart. The
    // candidates' table fits the window, its last column (why) too.
    let script = format!(
        "const wanted = {};
         const heading = [...document.querySelectorAll('h2')].find((h) => h.textContent === 'Candidate touches');
         const svg = heading.nextElementSibling.querySelector('svg');
         const labels = [...svg.querySelectorAll('text')].filter((t) => wanted.includes(t.textContent.trim())).map((t) => {{
           const b = t.getBBox(); return [b.x, b.y, b.x + b.width, b.y + b.height]; }});
         const root = document.documentElement;
         return {{ labels, width: svg.viewBox.baseVal.width, table: document.getElementById('candidates').getBoundingClientRect().right,
                   window: root.clientWidth, page: root.scrollWidth }};",
        serde_json::json!(wanted)
    );
    let shown = measure(&url, &script);
    let boxes: Vec<Vec<f64>> = shown["labels"].as_array().unwrap().iter().map(|b| b.as_array().unwrap().iter().map(number).collect()).collect();
    assert_eq!(boxes.len(), wanted.len(), "{shown}");
    for (i, a) in boxes.iter().enumerate() {
        assert!(a[0] >= 0.0 && a[2] <= number(&shown["width"]), "a label outside the time line: {a:?} in {shown}");
        for b in &boxes[i + 1..] {
            assert!(a[2] <= b[0] || b[2] <= a[0] || a[3] <= b[1] || b[3] <= a[1], "time line labels overlap as drawn: {a:?} {b:?}");
        }
    }
    assert_eq!(number(&shown["window"]), 1400.0, "{shown}");
    assert!(number(&shown["table"]) <= 1400.0 && number(&shown["page"]) <= 1400.0, "the candidates' table runs off a 1,400 px window: {shown}");
    screenshot(&url, "explain");

    // Every model's split of it, as the CLI lists it.
    let models_at = page.find("id=\"models\"").expect("the models table");
    let rows = blocks(&page[models_at..], "data-model");
    let models = explained["models"].as_object().unwrap();
    let expected_rows: usize = models.values().map(|shares| shares.as_array().unwrap().len().max(1)).sum();
    assert_eq!(rows.len(), expected_rows, "a row per model and credited message");
    for (model, row) in &rows {
        let shares = models[model.as_str()].as_array().unwrap();
        let Some(share) = shares.iter().find(|s| row.contains(&format!("data-msg-hash=\"{}\"", s["msg_hash"].as_str().unwrap()))) else { continue };
        let ppm = (number(&share["share"]) * 1e6).round();
        same(&field(row, "share").0, &serde_json::json!(ppm), &format!("{model} share"));
        same(&field(row, "value").0, &share["value"], &format!("{model} value"));
    }

    // A campaign's lift (the example data's first campaign holds out a fifth), as the CLI
    // gives it over the same range.
    let url = format!("{base}/t/{TENANT}/campaigns/winter-sale-2026/lift");
    let page = dom(&url);
    let from = page[page.find("data-from-ms=\"").unwrap() + 14..].split('"').next().unwrap().to_owned();
    let to = page[page.find("data-to-ms=\"").unwrap() + 12..].split('"').next().unwrap().to_owned();
    let lift = cli_json(&server, &["report", "lift", "--tenant", TENANT, "--campaign", "winter-sale-2026", "--from", &from, "--to", &to, "--format", "json"]);
    // The same panel on the campaign's own page (the same default range), default goal.
    let campaign_page = dom(&format!("{base}/t/{TENANT}/campaigns/winter-sale-2026"));
    assert!(campaign_page.contains(&format!("data-from-ms=\"{from}\" data-to-ms=\"{to}\"")), "the same range");
    let panel_at = campaign_page.find("id=\"lift-panel\"").expect("the campaign page's lift panel");
    let panel = &campaign_page[panel_at..campaign_page[panel_at..].find("</section>").map_or(campaign_page.len(), |end| panel_at + end)];
    for shown in [page.as_str(), panel] {
        for key in ["n_t", "n_c", "converted_t", "converted_c", "r_t", "r_c", "diff", "diff_low", "diff_high", "p_value", "value_per_customer_t"] {
            match &lift[key] {
                Value::Null => assert_eq!(field(shown, key).0, "null", "{key}"),
                value => same(&field(shown, key).0, value, &format!("lift {key}")),
            }
        }
        assert_eq!(shown.contains("data-field=\"warning\""), lift["enough_data"] == false);
    }
    screenshot(&url, "lift");

    // Every model side by side for the default goal, as `report models` gives it.
    let url = format!("{base}/t/{TENANT}/models");
    let page = dom(&url);
    let from = page[page.find("data-from-ms=\"").unwrap() + 14..].split('"').next().unwrap().to_owned();
    let to = page[page.find("data-to-ms=\"").unwrap() + 12..].split('"').next().unwrap().to_owned();
    let models = cli_json(&server, &["report", "models", "--tenant", TENANT, "--goal", "orders", "--from", &from, "--to", &to, "--format", "json"]);
    let rows: BTreeMap<String, String> = blocks(&page, "data-campaign").into_iter().collect();
    assert_eq!(rows.len(), models.as_array().unwrap().len(), "a row per campaign credited");
    for expected in models.as_array().unwrap() {
        let campaign = expected["campaign_id"].as_str().unwrap();
        let row = &rows[campaign];
        for (model, figures) in expected["models"].as_object().unwrap() {
            let cell = &row[row.find(&format!("data-model=\"{model}\"")).unwrap_or_else(|| panic!("{campaign}: no {model}"))..];
            same(&field(cell, "conversions").0, &figures["conversions"], &format!("{campaign} {model} conversions"));
        }
    }
    screenshot(&url, "models");

    // Member care: the trophy case and the first page of the timeline, newest first.
    let url = format!("{base}/t/{TENANT}/members?customer={MEMBER}");
    let page = dom(&url);
    let case = cli_json(&server, &["badges", "trophy-case", "--tenant", TENANT, "--customer", MEMBER, "--format", "json"]);
    let held_at = page.find("id=\"held\"").unwrap();
    let held: Vec<String> = blocks(&page[held_at..page.find("id=\"timeline\"").unwrap()], "data-badge").into_iter().map(|(id, _)| id).collect();
    let expected_held: Vec<String> = case["held"].as_array().unwrap().iter().map(|b| b["badge_id"].as_str().unwrap().to_owned()).collect();
    let expected_locked: Vec<String> = case["locked"].as_array().unwrap().iter().map(|b| b["badge_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(held, [expected_held, expected_locked].concat(), "held, then locked, in the trophy case's order");
    let timeline = cli_json(&server, &["badges", "timeline", "--tenant", TENANT, "--customer", MEMBER, "--format", "json"]);
    let shown = blocks(&page[page.find("id=\"timeline\"").unwrap()..], "data-event-id");
    assert_eq!(shown.len(), 50, "a page of 50");
    for ((event_id, row), entry) in shown.iter().zip(timeline.as_array().unwrap()) {
        assert_eq!(event_id, entry["event_id"].as_str().unwrap(), "newest first, as the CLI");
        assert!(row.contains(entry["action"].as_str().unwrap()) && row.contains(entry["source"].as_str().unwrap()), "{row}");
        assert_eq!(field(row, "event_id").1, entry["event_id"].as_str().unwrap(), "the entry's event id shown");
    }
    assert!(page.contains("rel=\"next\""), "200 events: more pages");
    screenshot(&url, "member-care");
    // A customer with nothing at all: said in words, no empty tables.
    let nobody = "customer-with-no-badges";
    let case = cli_json(&server, &["badges", "trophy-case", "--tenant", TENANT, "--customer", nobody, "--format", "json"]);
    assert_eq!(case["held"], serde_json::json!([]));
    let timeline = cli_json(&server, &["badges", "timeline", "--tenant", TENANT, "--customer", nobody, "--format", "json"]);
    assert_eq!(timeline, serde_json::json!([]));
    let page = dom(&format!("{base}/t/{TENANT}/members?customer={nobody}"));
    assert_eq!(field(&page, "no-data").1, "No badge history or progress for customer", "{page}");
    assert_eq!(field(&page, "customer_id").1, nobody);
    assert!(!page.contains("id=\"held\"") && !page.contains("id=\"timeline\""), "no empty trophy case or timeline: {page}");
}
