//! Routing state kept across restarts: a protocol serializes what it needs to rejoin (its
//! id, the nodes it knew) with postcard into a [`Storage`], and reads it back at boot.
//!
//! A board backs the trait with flash; [`RamStorage`] keeps records in RAM that a reset
//! does not clear, which is what QEMU (and a board that only reboots) offers.

use core::mem::MaybeUninit;
use crc::{CRC_32_ISCSI, Crc};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why a record could not be saved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageError {
    /// Larger than the space set aside for it.
    TooLarge,
    /// The medium failed (a flash write or erase).
    Device,
}

/// One record that survives a restart.
pub trait Storage {
    /// The saved record, copied into `buf`; `None` if there is none or it is damaged.
    fn load<'b>(&mut self, buf: &'b mut [u8]) -> Option<&'b [u8]>;
    /// Replaces the record.
    fn save(&mut self, record: &[u8]) -> Result<(), StorageError>;
}

const MAGIC: u32 = 0x4f56_4c59; // "OVLY"
const HEADER: usize = 12; // magic, length, CRC-32C of the record
const CRC: Crc<u32> = Crc::<u32>::new(&CRC_32_ISCSI);

/// A record in RAM that is not initialised at boot (`.uninit`), checked by a CRC, so that
/// it survives a reset but never yields garbage after a power cycle.
pub struct RamStorage<const N: usize> {
    mem: &'static mut MaybeUninit<[u8; N]>,
}

impl<const N: usize> RamStorage<N> {
    /// Wraps memory the startup code does not touch, e.g. a
    /// `#[unsafe(link_section = ".uninit.NAME")] static mut` (cortex-m-rt leaves `.uninit`
    /// alone).
    ///
    /// # Safety
    ///
    /// `mem` must be valid for the rest of the program and used by nothing else.
    pub unsafe fn new(mem: *mut MaybeUninit<[u8; N]>) -> Self {
        const { assert!(N > HEADER) };
        // SAFETY: the caller's promise.
        RamStorage {
            mem: unsafe { &mut *mem },
        }
    }

    fn bytes(&mut self) -> &mut [u8; N] {
        // SAFETY: any bit pattern is a valid `[u8; N]`; what a power cycle leaves there is
        // rejected by the magic number and the CRC before it is used.
        unsafe { self.mem.assume_init_mut() }
    }
}

impl<const N: usize> Storage for RamStorage<N> {
    fn load<'b>(&mut self, buf: &'b mut [u8]) -> Option<&'b [u8]> {
        let mem = self.bytes();
        let word = |i: usize| u32::from_le_bytes(mem[i..i + 4].try_into().expect("4 bytes"));
        let len = word(4) as usize;
        if word(0) != MAGIC || len > N - HEADER || len > buf.len() {
            return None;
        }
        let record = &mem[HEADER..HEADER + len];
        if CRC.checksum(record) != word(8) {
            return None;
        }
        buf[..len].copy_from_slice(record);
        Some(&buf[..len])
    }

    fn save(&mut self, record: &[u8]) -> Result<(), StorageError> {
        if record.len() > N - HEADER {
            return Err(StorageError::TooLarge);
        }
        let mem = self.bytes();
        mem[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        mem[4..8].copy_from_slice(&(record.len() as u32).to_le_bytes());
        mem[8..12].copy_from_slice(&CRC.checksum(record).to_le_bytes());
        mem[HEADER..HEADER + record.len()].copy_from_slice(record);
        Ok(())
    }
}

/// The largest record a [`Record`] reads or writes.
pub const MAX_RECORD: usize = 500;

/// Why a value was not saved.
#[derive(Debug)]
pub enum SaveError {
    /// It does not serialize into [`MAX_RECORD`] bytes.
    Encode(postcard::Error),
    /// The storage refused it.
    Storage(StorageError),
}

/// A protocol's saved state: a `T` in postcard in a [`Storage`], read once at boot and
/// written again only when it changes (flash wears out).
pub struct Record<T> {
    storage: &'static mut dyn Storage,
    saved: Option<T>,
}

impl<T: Serialize + DeserializeOwned + PartialEq> Record<T> {
    /// Reads what `storage` holds; nothing if it is empty, damaged (the CRC) or does not
    /// decode as a `T`.
    pub fn open(storage: &'static mut dyn Storage) -> Self {
        let mut buf = [0u8; MAX_RECORD];
        let saved = storage
            .load(&mut buf)
            .and_then(|bytes| postcard::from_bytes(bytes).ok());
        Record { storage, saved }
    }

    /// What the record holds: at boot, what the last run saved.
    pub fn saved(&self) -> Option<&T> {
        self.saved.as_ref()
    }

    /// Saves `value` unless the record already holds it: whether it was written.
    pub fn update(&mut self, value: T) -> Result<bool, SaveError> {
        if self.saved.as_ref() == Some(&value) {
            return Ok(false);
        }
        let mut buf = [0u8; MAX_RECORD];
        let bytes = postcard::to_slice(&value, &mut buf).map_err(SaveError::Encode)?;
        self.storage.save(bytes).map_err(SaveError::Storage)?;
        self.saved = Some(value);
        Ok(true)
    }
}
