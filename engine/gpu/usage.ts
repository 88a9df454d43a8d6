/**
 * WebGPU usage flags as plain numbers (spec values), so engine modules can be imported before a
 * runtime installs the GPU* globals (Dawn on Node installs them only when a device is acquired).
 */
export const BufferUsage = {
  MAP_READ: 0x1,
  MAP_WRITE: 0x2,
  COPY_SRC: 0x4,
  COPY_DST: 0x8,
  UNIFORM: 0x40,
  STORAGE: 0x80,
} as const;

export const MapModeRead = 0x1;
