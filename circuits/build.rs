//! Enables the snarkjs interoperability test when `snarkjs-check/node_modules`
//! holds snarkjs (`cd circuits/snarkjs-check && npm ci`).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(snarkjs_installed)");
    println!("cargo::rerun-if-changed=snarkjs-check/package-lock.json");
    println!("cargo::rerun-if-changed=snarkjs-check/node_modules/snarkjs/package.json");
    let cli = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("snarkjs-check/node_modules/snarkjs/build/cli.cjs");
    if cli.exists() {
        println!("cargo::rustc-cfg=snarkjs_installed");
    }
}
