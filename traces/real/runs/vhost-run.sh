#!/bin/bash
# vhost-user run: DPDK testpmd (vhost PMD, iommu-support=1) serves the device IOTLB of a virtio-net
# with iommu_platform=on behind QEMU's emulated VT-d (caching mode). Kernel+initramfs from /tmp/capture.
set -u
cd /tmp/capture-vhost
B=/tmp/capture/build
KV=$(ls $B/kpkg/lib/modules | head -1)
rm -f /tmp/vhu.sock raw/*
dpdk-testpmd -l 0-1 --no-pci --no-huge -m 1024 --file-prefix=h10b \
  --vdev 'net_vhost0,iface=/tmp/vhu.sock,queues=1,iommu-support=1' \
  -- --forward-mode=io --auto-start --stats-period 5 --nb-cores=1 --total-num-mbufs=8192 > raw/testpmd.log 2>&1 &
TP=$!
echo $TP > raw/testpmd.pid
for i in $(seq 1 50); do [ -S /tmp/vhu.sock ] && break; sleep 0.2; done
ls -la /tmp/vhu.sock
t0=$(date +%s)
timeout ${TIMEOUT:-240} ${GDB:-} qemu-system-x86_64 \
  -machine q35,kernel-irqchip=split -accel tcg -m 1024 -smp 1 \
  -object memory-backend-memfd,id=mem,size=1G,share=on -numa node,memdev=mem \
  -display none -monitor none -no-reboot -nic none -msg timestamp=on \
  -serial file:raw/console-vhost.log -serial file:raw/ttyS1-vhost.raw \
  -kernel $B/kpkg/boot/vmlinuz-$KV -initrd $B/initramfs.cpio.gz \
  -append "console=ttyS0 loglevel=6 panic=-1 trace_event=iommu:*,swiotlb:* trace_buf_size=32M rt.case=vhost rt.work=net intel_iommu=on iommu=nopt no_timer_check" \
  -device intel-iommu,intremap=on,device-iotlb=on,caching-mode=on \
  -chardev socket,id=c0,path=/tmp/vhu.sock -netdev vhost-user,id=n1,chardev=c0 \
  -device virtio-net-pci,netdev=n1,iommu_platform=on,ats=on,disable-legacy=on,vectors=0 \
  -trace 'vtd_*' -trace 'virtio_*' -trace 'virtqueue_*' -trace 'vhost_*' -trace pci_cfg_write \
  -D raw/qemu-vhost.full.log
echo "qemu exit $? after $(( $(date +%s) - t0 ))s"
kill $TP; wait $TP 2>/dev/null
