pub fn run(_a: &crate::args::BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("todo")
}
