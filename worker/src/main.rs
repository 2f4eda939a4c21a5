//! The `voxq-worker` binary; what it runs is in the library
//! ([`voxq_worker::entry`]), compiled once there.

/// jemalloc serves every allocation of the process, CTranslate2's and
/// whisper.cpp's too (its `malloc` replaces glibc's). CTranslate2 allocates
/// each layer's outputs afresh and frees them after; glibc hands blocks
/// over 32 MB (an encoder's attention weights: 162 MB for three tiny.en
/// windows) straight back to the kernel, which then zeroes and faults in
/// the same pages at the next layer. That cost a sixth of a long job's CPU
/// time; jemalloc keeps the pages for the next call (settings in
/// .cargo/config.toml, overridable at run time with `MALLOC_CONF`).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    voxq_worker::entry::main()
}
