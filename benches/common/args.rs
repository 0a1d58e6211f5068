//! The benchmarks' own flags, after `--`: `cargo bench --bench NAME -- --subjects 1000`.

/// The value given after `name`, if any.
pub fn flag(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// The number given after `name`, or `default`; a value that is not one stops the benchmark.
pub fn number<T: std::str::FromStr>(name: &str, default: T) -> T {
    flag(name).map_or(default, |v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} takes a number, not `{v}`"))
    })
}

/// The comma-separated numbers given after `name`, or `default`.
pub fn numbers<T: std::str::FromStr>(name: &str, default: Vec<T>) -> Vec<T> {
    flag(name).map_or(default, |list| {
        list.split(',')
            .map(|v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("{name} takes numbers like 1,2, not `{v}`"))
            })
            .collect()
    })
}
