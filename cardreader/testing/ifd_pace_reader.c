/*
 * TEST FACILITY: a pcsc-lite IFD handler for a card reader that does PACE itself (a "comfort
 * reader"), without hardware. It never has a card; it only answers PC/SC part 10 control requests:
 *   GET_FEATURE_REQUEST (SCARD_CTL_CODE(3400)) -> one TLV: FEATURE_EXECUTE_PACE (0x20) and its code
 *   that code with 01 00 00 (GetReaderPACECapabilities) -> result 0, length 1, bitmap eID + generic
 * Built by the kiosk tests with gcc against libpcsclite-dev and loaded by their own pcscd through a
 * reader.conf entry (LIBPATH). Never install it on a kiosk.
 */
#include <string.h>
#include <PCSC/ifdhandler.h>

#define CTL_GET_FEATURE_REQUEST (0x42000000 + 3400)
#define CTL_EXECUTE_PACE (0x42000000 + 3520)
#define FEATURE_EXECUTE_PACE 0x20
#define PACE_BITMAP 0x60 /* eID (0x20) + generic PACE (0x40) */

RESPONSECODE IFDHCreateChannelByName(DWORD Lun, LPSTR DeviceName)
{
	(void)Lun;
	(void)DeviceName;
	return IFD_SUCCESS;
}

RESPONSECODE IFDHCreateChannel(DWORD Lun, DWORD Channel)
{
	(void)Lun;
	(void)Channel;
	return IFD_SUCCESS;
}

RESPONSECODE IFDHCloseChannel(DWORD Lun)
{
	(void)Lun;
	return IFD_SUCCESS;
}

RESPONSECODE IFDHGetCapabilities(DWORD Lun, DWORD Tag, PDWORD Length, PUCHAR Value)
{
	(void)Lun;
	if ((Tag == TAG_IFD_SLOTS_NUMBER || Tag == TAG_IFD_SIMULTANEOUS_ACCESS) && *Length >= 1) {
		*Length = 1;
		Value[0] = 1;
		return IFD_SUCCESS;
	}
	if ((Tag == TAG_IFD_THREAD_SAFE || Tag == TAG_IFD_SLOT_THREAD_SAFE) && *Length >= 1) {
		*Length = 1;
		Value[0] = 0;
		return IFD_SUCCESS;
	}
	return IFD_ERROR_TAG;
}

RESPONSECODE IFDHSetCapabilities(DWORD Lun, DWORD Tag, DWORD Length, PUCHAR Value)
{
	(void)Lun;
	(void)Tag;
	(void)Length;
	(void)Value;
	return IFD_NOT_SUPPORTED;
}

RESPONSECODE IFDHSetProtocolParameters(DWORD Lun, DWORD Protocol, UCHAR Flags, UCHAR PTS1,
	UCHAR PTS2, UCHAR PTS3)
{
	(void)Lun;
	(void)Protocol;
	(void)Flags;
	(void)PTS1;
	(void)PTS2;
	(void)PTS3;
	return IFD_NOT_SUPPORTED;
}

RESPONSECODE IFDHPowerICC(DWORD Lun, DWORD Action, PUCHAR Atr, PDWORD AtrLength)
{
	(void)Lun;
	(void)Action;
	(void)Atr;
	*AtrLength = 0;
	return IFD_ICC_NOT_PRESENT;
}

RESPONSECODE IFDHTransmitToICC(DWORD Lun, SCARD_IO_HEADER SendPci, PUCHAR TxBuffer, DWORD TxLength,
	PUCHAR RxBuffer, PDWORD RxLength, PSCARD_IO_HEADER RecvPci)
{
	(void)Lun;
	(void)SendPci;
	(void)TxBuffer;
	(void)TxLength;
	(void)RxBuffer;
	(void)RecvPci;
	*RxLength = 0;
	return IFD_ICC_NOT_PRESENT;
}

RESPONSECODE IFDHControl(DWORD Lun, DWORD dwControlCode, PUCHAR TxBuffer, DWORD TxLength,
	PUCHAR RxBuffer, DWORD RxLength, LPDWORD pdwBytesReturned)
{
	(void)Lun;
	*pdwBytesReturned = 0;
	if (dwControlCode == CTL_GET_FEATURE_REQUEST) {
		if (RxLength < 6)
			return IFD_COMMUNICATION_ERROR;
		RxBuffer[0] = FEATURE_EXECUTE_PACE;
		RxBuffer[1] = 4;
		RxBuffer[2] = (CTL_EXECUTE_PACE >> 24) & 0xFF;
		RxBuffer[3] = (CTL_EXECUTE_PACE >> 16) & 0xFF;
		RxBuffer[4] = (CTL_EXECUTE_PACE >> 8) & 0xFF;
		RxBuffer[5] = CTL_EXECUTE_PACE & 0xFF;
		*pdwBytesReturned = 6;
		return IFD_SUCCESS;
	}
	if (dwControlCode == CTL_EXECUTE_PACE && TxLength == 3 && TxBuffer[0] == 0x01) {
		if (RxLength < 7)
			return IFD_COMMUNICATION_ERROR;
		memset(RxBuffer, 0, 4); /* result: success */
		RxBuffer[4] = 1;        /* output length, little-endian */
		RxBuffer[5] = 0;
		RxBuffer[6] = PACE_BITMAP;
		*pdwBytesReturned = 7;
		return IFD_SUCCESS;
	}
	return IFD_NOT_SUPPORTED;
}

RESPONSECODE IFDHICCPresence(DWORD Lun)
{
	(void)Lun;
	return IFD_ICC_NOT_PRESENT;
}
