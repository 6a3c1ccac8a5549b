//! Compression figures for the Redis tier's envelope: for each JSON file given, the median
//! time to compress and decompress with lz4 (lz4_flex, the codec the tier offers) and zstd
//! (levels 1 and 3, for comparison), and the bytes each saves. Prints one JSON object per
//! file and codec. Used by `benchmark/redis.mjs`.
//!
//!     cargo run --profile bench-tools --example l2_compression -- a.json b.json

use std::time::Instant;

fn median_us(mut f: impl FnMut(), reps: usize) -> f64 {
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let t0 = Instant::now();
            f();
            t0.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    t.sort_by(|a, b| a.total_cmp(b));
    t[t.len() / 2]
}

fn main() {
    for path in std::env::args().skip(1) {
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("{path}: {e}");
                std::process::exit(1);
            }
        };
        let reps = (20_000_000 / data.len().max(1)).clamp(5, 2000);
        let lz4 = lz4_flex::block::compress_prepend_size(&data);
        let c = median_us(
            || {
                drop(std::hint::black_box(
                    lz4_flex::block::compress_prepend_size(&data),
                ))
            },
            reps,
        );
        let d = median_us(
            || {
                drop(std::hint::black_box(
                    lz4_flex::block::decompress_size_prepended(&lz4),
                ))
            },
            reps,
        );
        println!(
            r#"{{"file":"{path}","codec":"lz4","bytes":{},"compressed":{},"compressUs":{c:.1},"decompressUs":{d:.1}}}"#,
            data.len(),
            lz4.len()
        );
        for level in [1, 3] {
            let z = zstd::bulk::compress(&data, level).unwrap_or_default();
            let c = median_us(
                || drop(std::hint::black_box(zstd::bulk::compress(&data, level))),
                reps,
            );
            let d = median_us(
                || drop(std::hint::black_box(zstd::bulk::decompress(&z, data.len()))),
                reps,
            );
            println!(
                r#"{{"file":"{path}","codec":"zstd-{level}","bytes":{},"compressed":{},"compressUs":{c:.1},"decompressUs":{d:.1}}}"#,
                data.len(),
                z.len()
            );
        }
    }
}
