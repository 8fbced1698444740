//! Checks across sinks: what no single file can know, run once every file of a process has
//! been validated on its own.

use std::collections::HashMap;

use super::{ConfigProblem, SinkConfig, TopicSelection};

/// Every problem between `sinks`: a sink name used twice, and two sinks landing one topic
/// under one store prefix. Each problem points at the later file, at the line of its `name` or
/// `store.url` key, and names the earlier file.
pub fn check_sinks(sinks: &[SinkConfig]) -> Vec<ConfigProblem> {
    let mut problems = Vec::new();
    let mut names: HashMap<&str, &SinkConfig> = HashMap::new();
    let mut landing_spots: HashMap<(String, &str), &SinkConfig> = HashMap::new();
    for s in sinks {
        let first = *names.entry(&s.name).or_insert(s);
        if !std::ptr::eq(first, s) {
            problems.push(ConfigProblem {
                file: s.source.clone(),
                line: s.lines.name,
                key: "name".into(),
                message: format!(
                    "sink name `{}` is used by {} too",
                    s.name,
                    first.source.display()
                ),
                hint: Some("sink names name consumer groups, markers and metrics".into()),
            });
        }
        // Two sinks landing one topic under one prefix would mix their files in one directory
        // and race for its window markers (`_SUCCESS`). (`landfall gc` no longer depends on
        // this check: data keys carry the sink name, and gc deletes only its own sink's files.)
        let TopicSelection::Names(topics) = &s.topics else {
            continue;
        };
        for t in topics {
            let spot = (landing_prefix(&s.store.url), t.as_str());
            let first = *landing_spots.entry(spot).or_insert(s);
            if !std::ptr::eq(first, s) {
                problems.push(ConfigProblem {
                    file: s.source.clone(),
                    line: s.lines.store_url,
                    key: "store.url".into(),
                    message: format!(
                        "`{}` already receives topic `{t}` from sink `{}` in {}",
                        s.store.url,
                        first.name,
                        first.source.display()
                    ),
                    hint: Some("give each sink its own prefix".into()),
                });
            }
        }
    }
    problems
}

/// The place a store URL lands data, as `landfall-store` opens it: scheme, bucket, and the
/// path without leading or trailing slashes, so `s3://lake/raw` and `s3://lake/raw/` are one.
fn landing_prefix(url: &url::Url) -> String {
    format!(
        "{}://{}/{}",
        url.scheme(),
        url.host_str().unwrap_or_default(),
        url.path().trim_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn sink(file: &str, name: &str, topic: &str, url: &str) -> SinkConfig {
        let text = format!(
            "name = \"{name}\"\ntopics = [\"{topic}\"]\n[kafka]\nbootstrap_servers = \"k:9092\"\n\
             [store]\nurl = \"{url}\"\n[marker]\nprefix = \"s3://lake/_landfall\"\n"
        );
        SinkConfig::from_toml(&text, Path::new(file), &|_| None).unwrap()
    }

    #[test]
    fn duplicate_names_point_at_the_later_name_key() {
        let problems = check_sinks(&[
            sink("a.toml", "orders", "orders", "s3://lake/a"),
            sink("b.toml", "orders", "orders", "s3://lake/b"),
        ]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        let p = &problems[0];
        assert_eq!(
            (p.file.to_str(), p.line, p.key.as_str()),
            (Some("b.toml"), Some(1), "name")
        );
        assert!(p.message.contains("a.toml"), "{p}");
    }

    #[test]
    fn one_topic_under_one_prefix_twice_is_refused_however_spelt() {
        for (first, second) in [
            ("s3://lake/raw", "s3://lake/raw"),
            ("s3://lake/raw", "s3://lake/raw/"),
            ("s3://lake/raw//", "s3://lake/raw"),
            ("file:///data/lake", "file:///data/lake/"),
        ] {
            let problems = check_sinks(&[
                sink("a.toml", "a", "orders", first),
                sink("b.toml", "b", "orders", second),
            ]);
            assert_eq!(problems.len(), 1, "{first} vs {second}: {problems:?}");
            let p = &problems[0];
            assert_eq!(
                (p.file.to_str(), p.line, p.key.as_str()),
                (Some("b.toml"), Some(6), "store.url")
            );
        }
        let apart = check_sinks(&[
            sink("a.toml", "a", "orders", "s3://lake/raw"),
            sink("b.toml", "b", "orders", "s3://lake/raw2"),
            sink("c.toml", "c", "clicks", "s3://lake/raw"),
        ]);
        assert!(apart.is_empty(), "{apart:?}");
    }
}
